// JSON request bodies in UTF-8, strictly: a body whose bytes are not valid UTF-8 is refused (400)
// rather than stored with U+FFFD in place of what the caller sent, and a JSON body declared in
// another charset is refused (415). An empty body is no body, whatever the content type says: many
// clients send `content-type: application/json` on a DELETE with nothing after it, and Express's
// JSON parser reads that as no body too; a route whose schema needs a body then answers 400
// VALIDATION_FAILED at /body. Parsing itself stays Fastify's (prototype poisoning refused).
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { HttpProblem } from '../problems.ts'

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i

async function jsonBodyPlugin(app: FastifyInstance) {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, function parseUtf8Json(request, body, done) {
    const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1].toLowerCase()
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return done(new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', 'JSON bodies are accepted in UTF-8 only.'), undefined)
    }
    if ((body as Buffer).length === 0) return done(null, undefined)
    let text: string
    try {
      text = strictUtf8.decode(body as Buffer)
    } catch {
      return done(new HttpProblem(400, 'MALFORMED_JSON', 'The request body is not valid UTF-8.'), undefined)
    }
    parse(request, text, done)
  })
}

export const jsonBody = fp(jsonBodyPlugin, { name: 'plinth-json-body' })
