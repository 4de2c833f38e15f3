// Express's `res` (Express 5's response, as expressjs.com documents it) over Fastify's reply. The
// reply is sent through Fastify, so the request's COMMIT still happens before anything leaves.
// What plinth does not serve (files, views, JSONP, streaming writes) throws as it is called,
// saying what to use instead (unsupported.ts).
import accepts from 'accepts'
import * as contentDisposition from 'content-disposition'
import { stringifySetCookie, type SetCookie } from 'cookie'
import encodeUrl from 'encodeurl'
import escapeHtml from 'escape-html'
import type { FastifyReply, FastifyRequest } from 'fastify'
import mime from 'mime-types'
import { STATUS_CODES } from 'node:http'
import path from 'node:path'
import { refuseUnsupportedMethods } from './unsupported.ts'

type HeaderValue = string | number | readonly string[]
export type Next = (arg?: unknown) => void

export interface CookieOptions extends Omit<SetCookie, 'name' | 'value' | 'maxAge'> {
  /** Milliseconds, as Express takes it (Max-Age is sent in seconds). */
  maxAge?: number
  signed?: boolean
  encode?: (value: string) => string
}

export class ExpressResponse {
  /** Express's per-response bag for data handed from one handler to the next. */
  locals: Record<string, unknown> = {}
  /** The `next` of the function running now: res.format's fallback calls it, as Express's does. */
  next: Next = () => {}
  private sent = false
  /** Called once the response is sent: the chain stops waiting on a handler that answered. */
  onSent: (() => void) | undefined

  constructor(
    readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  get headersSent() {
    return this.sent
  }

  get statusCode() {
    return this.reply.statusCode
  }

  set statusCode(code: number) {
    this.status(code)
  }

  status(code: number) {
    if (!Number.isInteger(code)) throw new TypeError(`Invalid status code: ${JSON.stringify(code)}. Status code must be an integer.`)
    if (code < 100 || code > 999) {
      throw new RangeError(`Invalid status code: ${JSON.stringify(code)}. Status code must be greater than 99 and less than 1000.`)
    }
    this.reply.code(code)
    return this
  }

  set(field: string | Record<string, HeaderValue>, value?: HeaderValue) {
    if (typeof field === 'object') {
      for (const [name, v] of Object.entries(field)) this.set(name, v)
      return this
    }
    let header: string | string[] = Array.isArray(value) ? value.map(String) : String(value)
    if (field.toLowerCase() === 'content-type') {
      if (Array.isArray(header)) throw new TypeError('Content-Type cannot be set to an Array')
      header = mime.contentType(header as string) || (header as string)
    }
    // Fastify adds to Set-Cookie on every call; Express's set() replaces, as for any header.
    if (field.toLowerCase() === 'set-cookie') this.reply.removeHeader(field)
    this.reply.header(field, header)
    return this
  }

  header(field: string | Record<string, HeaderValue>, value?: HeaderValue) {
    return this.set(field, value)
  }

  get(field: string) {
    return this.reply.getHeader(field)
  }

  append(field: string, value: string | string[]) {
    const previous = this.get(field)
    let next: HeaderValue = value
    if (previous !== undefined && previous !== '') {
      const before = Array.isArray(previous) ? previous : [String(previous)]
      next = before.concat(value)
    }
    return this.set(field, next)
  }

  // Node's own response methods, which Express's response inherits.
  setHeader(field: string, value: HeaderValue) {
    this.reply.header(field, Array.isArray(value) ? value.map(String) : String(value))
    return this
  }
  getHeader(field: string) {
    return this.reply.getHeader(field)
  }
  hasHeader(field: string) {
    return this.reply.hasHeader(field)
  }
  removeHeader(field: string) {
    this.reply.removeHeader(field)
  }

  type(type: string) {
    return this.set('Content-Type', type.includes('/') ? type : mime.contentType(type) || 'application/octet-stream')
  }

  contentType(type: string) {
    return this.type(type)
  }

  vary(field: string | string[]) {
    this.reply.vary(field)
    return this
  }

  links(links: Record<string, string | string[]>) {
    const previous = this.get('Link')
    const added = Object.entries(links)
      .map(([rel, urls]) => (Array.isArray(urls) ? urls : [urls]).map((url) => `<${url}>; rel="${rel}"`).join(', '))
      .join(', ')
    return this.set('Link', previous ? `${previous}, ${added}` : added)
  }

  location(url: string) {
    return this.set('Location', encodeUrl(String(url)))
  }

  attachment(filename?: string) {
    const name = filename === undefined ? undefined : path.basename(filename)
    if (name) this.type(path.extname(name))
    return this.set('Content-Disposition', contentDisposition.create(name))
  }

  cookie(name: string, value: unknown, options: CookieOptions = {}) {
    const { signed, encode = encodeURIComponent, maxAge, ...attributes } = options
    // No cookie secret exists in plinth; Express says the same without cookie-parser's.
    if (signed) throw new Error('cookieParser("secret") required for signed cookies')
    const cookie: SetCookie = { path: '/', ...attributes, name, value: typeof value === 'object' ? `j:${JSON.stringify(value)}` : String(value) }
    if (maxAge != null) {
      // Express throws on a maxAge that is not a number, as its cookie serializer does.
      const ms = Number(maxAge)
      if (!Number.isFinite(ms)) throw new TypeError('option maxAge is invalid')
      cookie.expires = new Date(Date.now() + ms)
      cookie.maxAge = Math.floor(ms / 1000)
    }
    if (cookie.expires !== undefined && !(cookie.expires instanceof Date && Number.isFinite(cookie.expires.getTime()))) throw new TypeError('option expires is invalid')
    return this.append('Set-Cookie', stringifySetCookie(cookie, { encode }))
  }

  clearCookie(name: string, options: CookieOptions = {}) {
    const { maxAge: _ignored, ...rest } = options
    return this.cookie(name, '', { path: '/', ...rest, expires: new Date(1) })
  }

  format(handlers: Record<string, (req: FastifyRequest, res: ExpressResponse, next: Next) => void>) {
    const next = this.next
    const keys = Object.keys(handlers).filter((key) => key !== 'default')
    const chosen = keys.length > 0 ? (accepts(this.req.raw).types(keys) as string | false) : false
    this.vary('Accept')
    if (chosen) {
      this.set('Content-Type', formatType(chosen))
      handlers[chosen](this.req, this, next)
    } else if (handlers.default) {
      handlers.default(this.req, this, next)
    } else {
      // As Express's: the types offered, so that an error handler can answer 406 "Supports: ...".
      const types = keys.map(formatType)
      next(Object.assign(new Error('Not Acceptable'), { status: 406, statusCode: 406, types }))
    }
    return this
  }

  redirect(statusOrUrl: number | string, maybeUrl?: string) {
    const status = typeof statusOrUrl === 'number' ? statusOrUrl : 302
    const address = String(typeof statusOrUrl === 'number' ? maybeUrl : statusOrUrl)
    this.location(address)
    const where = this.get('Location') as string
    const message = STATUS_CODES[status] ?? String(status)
    let body = ''
    this.format({
      text: () => (body = `${message}. Redirecting to ${where}`),
      html: () => {
        body = `<!DOCTYPE html><head><title>${message}</title></head><body><p>${message}. Redirecting to ${escapeHtml(where)}</p></body>`
      },
      default: () => (body = ''),
    })
    this.status(status)
    // No body for a client that accepts neither text nor HTML: no Content-Type either (Fastify
    // would call a string text/plain), Content-Length 0.
    this.finish(body === '' ? undefined : body)
  }

  sendStatus(code: number) {
    this.status(code)
    this.type('txt')
    this.send(STATUS_CODES[code] ?? String(code))
  }

  json(body: unknown) {
    if (!this.get('Content-Type')) this.reply.type('application/json; charset=utf-8')
    // Fastify serializes objects (with the route's response schema); a string would go out raw.
    this.finish(typeof body === 'string' ? JSON.stringify(body) : body)
  }

  send(body?: unknown) {
    if (typeof body === 'string') {
      // A string goes out as UTF-8, whatever charset the type named; HTML when no type was set.
      const type = this.get('Content-Type')
      if (typeof type === 'string') this.reply.header('Content-Type', `${type.replace(/;\s*charset=[^;]*/i, '')}; charset=utf-8`)
      else this.type('html')
      return this.finish(body)
    }
    if (body === null || body === undefined) return this.finish(body === null ? '' : undefined)
    if (ArrayBuffer.isView(body)) {
      if (!this.get('Content-Type')) this.type('bin')
      return this.finish(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
    }
    return this.json(body)
  }

  end(body?: string | Uint8Array) {
    this.finish(body === undefined || typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength))
  }

  private finish(body: unknown) {
    if (this.sent) throw new Error('Cannot send the response: it was already sent')
    this.sent = true
    // Express's res.send: 204 and 304 have no body, so nothing that would describe one; 205 has
    // an empty one, said by Content-Length 0.
    const status = this.reply.statusCode
    if (status === 204 || status === 304) {
      for (const header of ['content-type', 'content-length', 'transfer-encoding']) this.reply.removeHeader(header)
      body = undefined
    } else if (status === 205) {
      this.reply.removeHeader('transfer-encoding')
      this.reply.header('content-length', '0')
      body = undefined
    }
    this.reply.send(body)
    this.onSent?.()
  }
}

/** A res.format key as a media type, as Express normalizes it: `html` is text/html, parameters dropped. */
function formatType(key: string): string {
  return key.includes('/') ? key.split(';')[0]!.trim() : mime.lookup(key) || 'application/octet-stream'
}

refuseUnsupportedMethods(ExpressResponse.prototype)
