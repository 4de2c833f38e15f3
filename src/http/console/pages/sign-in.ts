// Signing in and out. Sign-in takes the admin token (counted toward the brake on failed
// authentications like any other credential) and the operator's name, which the audit trail
// records with every change of the session.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Host } from '../../../app/host.ts'
import type { FailureBrake } from '../../../access/failure-brake.ts'
import { isAdminToken } from '../../../access/admin-token.ts'
import { HttpProblem } from '../../../problems.ts'
import { html } from '../html.ts'
import { csrfField, page } from '../layout.ts'
import { cookieOptions, csrfToken, sendPage, SESSION_COOKIE } from '../respond.ts'

interface SignInBody {
  operator?: string
  token?: string
}

const OPERATOR = /^[^\p{Cc}]{1,100}$/u

function signInPage(csrf: string, error?: string, operator = '') {
  return page(
    'Sign in',
    { csrf, error },
    html`<section class="signin"><form method="post" action="/admin/sign-in">
      ${csrfField(csrf)}
      <label for="operator">Your name (the audit trail records it with everything you change)
        <input id="operator" name="operator" autocomplete="username" required maxlength="100" value="${operator}"></label>
      <label for="token">Admin token (PLINTH_ADMIN_TOKEN)
        <input id="token" name="token" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
    </form></section>`,
  )
}

export async function signInRoutes(app: FastifyInstance, { host, authFailures }: { host: Host; authFailures: FailureBrake }) {
  app.get('/sign-in', async (request, reply) => {
    if (request.consoleSession) return reply.redirect('/admin/tenants', 303)
    return sendPage(reply, signInPage(csrfToken(request, reply)))
  })

  app.post<{ Body: SignInBody }>('/sign-in', async (request, reply) => {
    authFailures.check(request)
    const operator = (request.body?.operator ?? '').trim()
    const token = request.body?.token ?? ''
    if (!isAdminToken(`Bearer ${token}`, host.config.adminToken)) {
      authFailures.failed(request, { reason: 'bad admin token' }, 'console sign-in failed', { operator: true })
      return sendPage(reply, signInPage(csrfToken(request, reply), 'That is not the admin token.', operator), 401)
    }
    if (!OPERATOR.test(operator)) return sendPage(reply, signInPage(csrfToken(request, reply), 'Give your name: 1 to 100 characters.', operator), 400)
    const { cookie } = await host.consoleSessions.open(operator, { id: request.id, ip: request.ip, userAgent: request.headers['user-agent'] })
    reply.setCookie(SESSION_COOKIE, cookie, cookieOptions(request))
    return reply.redirect('/admin/tenants', 303)
  })

  app.post('/sign-out', async (request: FastifyRequest, reply) => {
    const session = request.consoleSession
    if (!session) throw new HttpProblem(401, 'SIGNED_OUT', 'Your console session has ended already.')
    await host.consoleSessions.end(session.id, 'signed out')
    reply.clearCookie(SESSION_COOKIE, cookieOptions(request))
    return reply.redirect('/admin/sign-in', 303)
  })
}
