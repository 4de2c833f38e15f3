// What every console page does with its request and reply: the session cookie's options, a CSRF
// token for its forms, sending the rendered page.
import type { FastifyReply, FastifyRequest } from 'fastify'

export const SESSION_COOKIE = 'plinth_console'

/** Secure, except over plain HTTP to this machine, where a browser would not send it back otherwise. */
export function secureCookie(request: FastifyRequest): boolean {
  return !(request.protocol === 'http' && ['localhost', '127.0.0.1', '[::1]'].includes(request.hostname))
}

export function cookieOptions(request: FastifyRequest) {
  return { path: '/admin', httpOnly: true, sameSite: 'strict' as const, secure: secureCookie(request) }
}

/** A fresh CSRF token for this request's forms, bound to its session (none before sign-in). */
export function csrfToken(request: FastifyRequest, reply: FastifyReply): string {
  return reply.generateCsrf({ ...cookieOptions(request), userInfo: request.consoleSession?.id ?? 'signed-out' })
}

/** Sends a rendered page. */
export function sendPage(reply: FastifyReply, markup: { text: string }, status = 200) {
  return reply.code(status).type('text/html; charset=utf-8').send(markup.text)
}
