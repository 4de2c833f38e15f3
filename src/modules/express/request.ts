// Express's `req` on top of Fastify's request, for the routes of one module. Fastify already has
// what Express calls params, query, body, headers, ip, hostname, protocol, method, url and
// originalUrl, and @fastify/sensible gives it req.is(); these add the rest of Express's request
// as plinth supports it. Decorated per module scope: the prototype carries them, a request pays
// nothing until it reads one.
import accepts from 'accepts'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export function decorateExpressRequest(scope: FastifyInstance, basePath: string) {
  scope.decorateRequest('expressMount', '')
  scope.decorateRequest('baseUrl', {
    getter(this: FastifyRequest) {
      return basePath + this.expressMount
    },
  })
  scope.decorateRequest('path', {
    getter(this: FastifyRequest) {
      const query = this.url.indexOf('?')
      const pathname = query === -1 ? this.url : this.url.slice(0, query)
      return pathname.slice(this.baseUrl.length) || '/'
    },
  })
  scope.decorateRequest('get', header)
  scope.decorateRequest('header', header)
  scope.decorateRequest('accepts', function (this: FastifyRequest, ...types: string[]) {
    return accepts(this.raw).types(...types.flat())
  })
  scope.decorateRequest('acceptsEncodings', function (this: FastifyRequest, ...encodings: string[]) {
    return accepts(this.raw).encodings(...encodings.flat())
  })
  scope.decorateRequest('acceptsCharsets', function (this: FastifyRequest, ...charsets: string[]) {
    return accepts(this.raw).charsets(...charsets.flat())
  })
  scope.decorateRequest('acceptsLanguages', function (this: FastifyRequest, ...languages: string[]) {
    return accepts(this.raw).languages(...languages.flat())
  })
  // plinth trusts no proxy headers, so as in Express with "trust proxy" off: no forwarded chain.
  if (!scope.hasRequestDecorator('ips')) scope.decorateRequest('ips', { getter: () => [] })
  scope.decorateRequest('secure', {
    getter(this: FastifyRequest) {
      return this.protocol === 'https'
    },
  })
  scope.decorateRequest('xhr', {
    getter(this: FastifyRequest) {
      return String(this.headers['x-requested-with'] ?? '').toLowerCase() === 'xmlhttprequest'
    },
  })
}

/** Express's req.get(name): case-insensitive, with Referer and Referrer one header. */
function header(this: FastifyRequest, name: string) {
  if (typeof name !== 'string') throw new TypeError(name === undefined ? 'name argument is required to req.get' : 'name must be a string to req.get')
  const lower = name.toLowerCase()
  if (lower === 'referer' || lower === 'referrer') return this.headers.referer ?? this.headers.referrer
  return this.headers[lower]
}

declare module 'fastify' {
  interface FastifyRequest {
    baseUrl: string
    path: string
    get(name: string): string | string[] | undefined
    header(name: string): string | string[] | undefined
    accepts(...types: (string | string[])[]): string | string[] | false
    secure: boolean
    xhr: boolean
  }
}
