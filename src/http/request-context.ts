// What every request gets, whatever route it takes: a safe request id (kept from x-request-id when
// it is safe, else a new UUID) echoed back, one log line when it ends (at info; a probe's at debug,
// or warn when it fails), and a 503 in the one error shape while the host drains for shutdown.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { HttpProblem, sendProblem } from '../problems.ts'
import { redactUrl } from '../platform/logger.ts'
import type { Metrics } from '../app/metrics.ts'

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/

export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The module a route belongs to, for the request log line. */
    module?: string
    /**
     * Open to callers without a credential: a module route (contract: routes say so in their
     * options), or a host route (health, the index, the module list), documented as open.
     */
    public?: boolean
    /** The permissions its guards check: for the OpenAPI document. */
    permissions?: string[]
    /**
     * An orchestrator's probe (/health/live, /health/ready), asked every few seconds: its line is
     * at debug while it answers 2xx, at warn when it does not.
     */
    probe?: boolean
  }
}

async function requestContextPlugin(app: FastifyInstance, { metrics }: { metrics?: Metrics }) {
  let draining = false
  app.addHook('preClose', async () => {
    draining = true
  })

  // The hooks every request runs are callback-style: none waits on anything, and an async hook
  // costs a promise per request for nothing.
  app.addHook('onRequest', function echoRequestId(request, reply, done) {
    reply.header('x-request-id', request.id)
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      return sendProblem(request, reply, new HttpProblem(400, 'BAD_REQUEST', 'An HTTP/1.1 request must name its Host.'))
    }
    done()
  })

  // Draining (SIGTERM): the listener is closed and idle keep-alive sockets with it (Fastify), so no
  // new request starts here; a response still in flight closes its connection after it, so a
  // request pipelined behind it is never read and the client retries it on another instance.
  app.addHook('onSend', function closeWhileDraining(_request, reply, payload, done) {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })

  app.addHook('onResponse', function logRequest(request, reply, done) {
    // routeOptions is a getter that builds a new object: read once.
    const { url: route, config } = request.routeOptions
    const ms = reply.elapsedTime
    const module = config?.module
    const tenant = request.tenant?.code
    const status = reply.statusCode
    const level = config?.probe ? (status < 300 ? 'debug' : 'warn') : 'info'
    request.log[level](
      {
        method: request.method,
        url: redactUrl(request.url),
        route,
        module,
        tenant,
        principal: request.principal ? { id: request.principal.id, kind: request.principal.kind } : undefined,
        status,
        ms: Math.round(ms * 100) / 100,
      },
      'request completed',
    )
    metrics?.observeRequest({ module, route, status, tenant, seconds: ms / 1000 })
    done()
  })
}

export const requestContext = fp(requestContextPlugin, { name: 'plinth-request-context' })
