// The operator's console at /admin: pages rendered on the server (html.ts), plain forms, one
// stylesheet, no script. Everything that makes it a browser application lives in this
// encapsulated context and reaches nothing else: its cookies (path /admin), the CSRF check on
// every POST, its security headers (a Content-Security-Policy with no inline anything), its HTML
// error pages. Every action calls the same service the admin API and the CLI call.
//
// Who may do what: the operator signs in with the admin token (and says who they are, for the
// audit trail); the session is a row of public.console_session (access/console-sessions.ts)
// named by an HttpOnly, SameSite=Strict cookie, Secure except over plain HTTP to localhost.
// A POST must carry the CSRF token of its session, come from this origin (Origin and
// Sec-Fetch-Site), and a session that ended or idled out signs nobody in.
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import helmet from '@fastify/helmet'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import type { Host } from '../../app/host.ts'
import type { FailureBrake } from '../../access/failure-brake.ts'
import { sessionActor, type ConsoleSession } from '../../access/console-sessions.ts'
import { actingAs } from '../../platform/audit/actor.ts'
import { HttpProblem, toProblem } from '../../problems.ts'
import { page } from './layout.ts'
import { html } from './html.ts'
import { CONSOLE_CSS } from './style.ts'
import { SESSION_COOKIE } from './respond.ts'
import { signInRoutes } from './pages/sign-in.ts'
import { tenantPages } from './pages/tenants.ts'
import { tenantPage } from './pages/tenant.ts'
import { modulesPage } from './pages/modules.ts'
import { migrationsPage } from './pages/migrations.ts'
import { auditPage } from './pages/audit.ts'

const CSRF_COOKIE = 'plinth_console_csrf'

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: ConsoleSession | null
  }
}

export interface ConsoleOptions {
  host: Host
  authFailures: FailureBrake
}

/** Pages anyone may load: the sign-in form and the stylesheet. */
const OPEN = new Set(['/admin/sign-in', '/admin/assets/console.css'])

export async function consoleRoutes(app: FastifyInstance, { host, authFailures }: ConsoleOptions) {
  const sessions = host.consoleSessions
  app.decorateRequest('consoleSession', null)
  // Pages for a browser, not operations of the API: left out of the OpenAPI document.
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true }
  })
  await app.register(cookie)
  await app.register(formbody, { bodyLimit: 64 * 1024 })
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], styleSrc: ["'self'"], imgSrc: ["'self'"], formAction: ["'self'"], frameAncestors: ["'none'"], baseUri: ["'none'"] },
    },
    // Same-origin pages only; nothing of it may be framed or sniffed.
    crossOriginResourcePolicy: { policy: 'same-origin' },
    // Not helmet's no-referrer: under it a browser sends `Origin: null` with the console's own
    // forms, and the origin check below could not tell them from anyone's.
    referrerPolicy: { policy: 'same-origin' },
  })
  await app.register(csrf, {
    cookieKey: CSRF_COOKIE,
    cookieOpts: { path: '/admin', httpOnly: true, sameSite: 'strict' },
    getUserInfo: (request: FastifyRequest) => request.consoleSession?.id ?? 'signed-out',
    // Shared by every instance (a token made on one checks on another), and secret: from the admin token.
    csrfOpts: { hmacKey: createHash('sha256').update(`plinth console csrf\n${host.config.adminToken ?? ''}`).digest() },
  })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (request.method === 'POST' && !sameOrigin(request)) {
      throw new HttpProblem(403, 'CROSS_ORIGIN', 'This form was sent from another site; the console takes forms from its own pages only.')
    }
    if (!host.config.adminToken) throw new HttpProblem(404, 'NOT_FOUND', 'The console is off: PLINTH_ADMIN_TOKEN is not set.')
    const path = request.url.split('?')[0]
    request.consoleSession = (await sessions.find(request.cookies[SESSION_COOKIE])) ?? null
    if (request.consoleSession || OPEN.has(path)) return
    if (request.method === 'GET') return reply.redirect('/admin/sign-in', 303)
    throw new HttpProblem(401, 'SIGNED_OUT', 'Your console session has ended; sign in again.')
  })
  // After the body is read: the token comes in the form.
  app.addHook('preHandler', (request, reply, done) => {
    if (request.method === 'POST') return app.csrfProtection(request, reply, done)
    done()
  })
  // The handler runs inside done(): what it changes is audited as this session's operator.
  app.addHook('preHandler', (request, _reply, done) => {
    const session = request.consoleSession
    if (!session) return done()
    actingAs(sessionActor(session, request), done)
  })

  app.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error)
    const csrfRefused = (error as { code?: string }).code === 'FST_CSRF_INVALID_TOKEN' || (error as { code?: string }).code === 'FST_CSRF_MISSING_SECRET'
    if (problem.status >= 500 && !csrfRefused) request.log.error({ err: error }, 'console request failed')
    const status = csrfRefused ? 403 : problem.status
    const detail = csrfRefused ? 'This form is out of date or was not sent from a console page; reload the page and try again.' : problem.detail
    const fields = problem.options.errors?.map((e) => html`<li>${e.path.replace(/^\//, '')}: ${e.message}</li>`)
    const back = request.consoleSession ? html`<p><a href="/admin/tenants">Back to the console</a></p>` : html`<p><a href="/admin/sign-in">Sign in</a></p>`
    const body = html`${fields?.length ? html`<ul>${fields}</ul>` : ''}${back}`
    return reply.code(status).type('text/html; charset=utf-8').send(page(status === 403 || status === 401 ? 'Refused' : 'Not done', { csrf: '', operator: request.consoleSession?.operator, error: detail }, body).text)
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).type('text/html; charset=utf-8').send(page('Not found', { csrf: '', operator: request.consoleSession?.operator, error: `No console page at ${request.url.split('?')[0]}.` }, html`<p><a href="/admin/tenants">Tenants</a></p>`).text),
  )

  app.get('/assets/console.css', { config: { public: true } }, async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CONSOLE_CSS))
  app.get('/', async (_request, reply) => reply.redirect('/admin/tenants', 303))
  await app.register(signInRoutes, { host, authFailures })
  await app.register(tenantPages, { host })
  await app.register(tenantPage, { host })
  await app.register(modulesPage, { host })
  await app.register(migrationsPage, { host })
  await app.register(auditPage, { host })
}

/**
 * A POST from this origin: its Origin (where sent) names this host, and the browser does not call
 * it cross-site. The host, not the scheme: behind a proxy that ends TLS the page is https:// while
 * the host is reached over plain HTTP, and comparing schemes refused the console's own forms.
 */
function sameOrigin(request: FastifyRequest): boolean {
  if (request.headers['sec-fetch-site'] === 'cross-site') return false
  const origin = request.headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === request.host
  } catch {
    return false // `null`, an opaque origin
  }
}
