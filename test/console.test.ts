// The operator's console in a real browser (Debian's Chromium, driven by playwright-core) against
// a host listening on real HTTP: what an operator does, page by page, checked by what they see
// and by the API's answers; every page passes axe's accessibility rules (no serious or critical
// violation) and the Content-Security-Policy (no violation reported); and what an attacker tries
// is refused: a form without its CSRF token, a form from another site, a session after sign-out.
// PLINTH_SCREENSHOTS=<folder> saves a screenshot of each page there (docs/console.md shows them).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { createRequire } from 'node:module'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { plinth } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const CHROMIUM = '/usr/bin/chromium'
const noBrowser = fs.existsSync(CHROMIUM) ? {} : { skip: `no browser at ${CHROMIUM} (Debian's chromium package; .ci/run installs it)` }
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const screenshots = process.env.PLINTH_SCREENSHOTS

// Flags of a root sandbox on a closed network (docs: the machine's notes on headless Chromium).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

async function launch(t: { teardown(fn: () => unknown): void }): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}

/** axe's serious and critical violations on the page as it is now. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(axeSource)
  const result = await page.evaluate(() => (window as any).axe.run(document, { resultTypes: ['violations'] }))
  return result.violations
    .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
    .map((v: any) => `${v.id} (${v.impact}): ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`)
}



t.test('an operator signs in, runs tenants and keys, reads the audit trail and signs out', { ...postgresPassOnly, ...noBrowser }, async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(th.app.server.address() as { port: number }).port}`
  const browser = await launch(t)
  const context = await browser.newContext()
  const page = await context.newPage()
  const cspViolations: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text())
  })
  const checkPage = async (name: string) => {
    t.same(await accessibilityProblems(page), [], `${name}: no serious or critical accessibility violation`)
    if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true })
  }
  const api = (url: string, key: string) => fetch(`${origin}${url}`, { headers: { authorization: `Bearer ${key}`, 'x-tenant': 'acme' } })

  // Signed out, every page leads to the sign-in form; a wrong token is refused there.
  await page.goto(`${origin}/admin/tenants`)
  t.equal(new URL(page.url()).pathname, '/admin/sign-in')
  await checkPage('sign-in')
  await page.getByLabel('Your name').fill('Ann Operator')
  await page.getByLabel('Admin token').fill('not-the-token')
  await page.getByRole('button', { name: 'Sign in' }).click()
  t.match(await page.getByRole('alert').textContent(), /not the admin token/)
  await page.getByLabel('Admin token').fill(TEST_ADMIN_TOKEN)
  await page.getByRole('button', { name: 'Sign in' }).click()
  t.equal(new URL(page.url()).pathname, '/admin/tenants', 'signed in, on the tenant list')
  const [session] = (await context.cookies()).filter((c) => c.name === 'plinth_console')
  t.match(session, { httpOnly: true, sameSite: 'Strict', path: '/admin' }, 'the session cookie: HttpOnly, SameSite=Strict, for /admin only')

  // A tenant, made in the console.
  await page.getByLabel('Code', { exact: true }).fill('acme')
  await page.getByLabel('Name', { exact: true }).fill('Acme Corp')
  await page.getByRole('button', { name: 'Create' }).click()
  t.equal(new URL(page.url()).pathname, '/admin/tenants/acme')
  t.match(await page.getByRole('status').textContent(), /created/)
  // A role to give a key (the console shows roles; the admin API makes them).
  const acme = await th.host.tenants.get('acme')
  await th.host.roles.create(acme, 'reader')
  await th.host.roles.grant(acme, 'reader', 'inventory.items.read')
  await page.reload()
  await checkPage('tenant')

  // A key: its secret shown once, working, then revoked.
  await page.getByLabel('Name', { exact: true }).fill('ci-bot')
  await page.getByLabel('reader').check()
  await page.getByRole('button', { name: 'Create key' }).click()
  const secret = (await page.locator('#new-key-secret').textContent())!
  t.match(secret, /^plk_[a-z0-9]{12}_[\w-]{43}$/, 'the secret is shown')
  t.equal((await api('/api/plugins/inventory/items', secret)).status, 200, 'and works')
  await page.goto(`${origin}/admin/tenants/acme`)
  t.notMatch(await page.content(), secret.slice(-20), 'shown once: not on the page again')
  await page.getByRole('button', { name: 'Revoke ci-bot' }).click()
  t.match(await page.getByRole('status').textContent(), /revoked/)
  t.equal((await api('/api/plugins/inventory/items', secret)).status, 401, 'a revoked key is refused')

  // Suspended: the tenant's API answers 403.
  const other = await th.host.createKey('acme', 'other', ['reader'])
  await page.getByRole('button', { name: 'Suspend' }).click()
  t.match(await page.getByRole('status').textContent(), /suspended/)
  const refused = await api('/api/plugins/inventory/items', other.key)
  t.equal(refused.status, 403)
  t.match(await refused.json(), { error: 'TENANT_SUSPENDED' })

  for (const [name, url] of [['tenants', '/admin/tenants'], ['modules', '/admin/modules'], ['migrations', '/admin/migrations'], ['audit', '/admin/audit?verify=1']]) {
    await page.goto(`${origin}${url}`)
    await checkPage(name)
  }
  t.match(await page.getByRole('status').textContent(), /The chain verifies/)
  const trail = await page.locator('table').textContent()
  for (const action of ['console.signed-in', 'tenant.created', 'key.created', 'key.revoked', 'tenant.suspended']) t.match(trail, action, `the trail shows ${action}`)
  const { events } = (await th.app.inject({ method: 'GET', url: '/api/admin/audit?actor=console', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).json()
  t.same(
    events.map((e: any) => e.action).reverse(),
    ['console.signed-in', 'tenant.created', 'key.created', 'key.revoked', 'tenant.suspended'],
    'each change the console made is one row, by its operator',
  )
  t.match(events[0], { actorId: /^Ann Operator \(session [\w-]{12}\)$/, clientAddress: '127.0.0.1' })

  // A form without its CSRF token (the cookies sent, as a forged request would have them).
  const noToken = await context.request.post(`${origin}/admin/tenants/acme/resume`, { form: { confirm: 'x' }, maxRedirects: 0 })
  t.equal(noToken.status(), 403, 'a form without the CSRF token is refused')
  t.match(await noToken.text(), /out of date or was not sent from a console page/)

  // A form from another site, with the cookie, and one from another port of this machine.
  const attacker = http.createServer((request, response) => {
    response.setHeader('content-type', 'text/html')
    response.end(`<form id="f" method="post" action="${origin}/admin/tenants/acme/resume"></form><script>document.getElementById('f').submit()</script>`)
  })
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => attacker.close())
  const attackerPort = (attacker.address() as { port: number }).port
  for (const from of [`http://localhost:${attackerPort}/`, `http://127.0.0.1:${attackerPort}/`]) {
    const answer = page.waitForResponse((r) => r.url().endsWith('/admin/tenants/acme/resume'))
    await page.goto(from)
    t.equal((await answer).status(), 403, `a form posted from ${from} is refused`)
  }
  t.equal((await th.host.tenants.get('acme')).status, 'suspended', 'and changed nothing')
  t.same(cspViolations, [], 'no page broke its Content-Security-Policy')

  // Sign out: the session's cookie signs nobody in any more.
  await page.goto(`${origin}/admin/tenants`)
  await page.getByRole('button', { name: 'Sign out' }).click()
  t.equal(new URL(page.url()).pathname, '/admin/sign-in')
  const replayed = await fetch(`${origin}/admin/tenants`, { headers: { cookie: `plinth_console=${session.value}` }, redirect: 'manual' })
  t.equal(replayed.status, 303, 'the old cookie leads to the sign-in form')
  t.equal(replayed.headers.get('location'), '/admin/sign-in')
  const replayedPost = await fetch(`${origin}/admin/tenants/acme/resume`, { method: 'POST', headers: { cookie: `plinth_console=${session.value}` }, redirect: 'manual' })
  t.equal(replayedPost.status, 401, 'and cannot post')
  t.match((await th.host.pool.query(`SELECT action FROM public.audit_event ORDER BY seq DESC LIMIT 1`)).rows[0], { action: 'console.signed-out' })
})

t.test('the console is its own context: its cookies, CSRF and headers reach nothing else', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.createTenant('acme')
  const consolePage = await th.app.inject({ method: 'GET', url: '/admin/sign-in' })
  t.match(consolePage.headers['content-security-policy'], /default-src 'none'/)
  t.notMatch(consolePage.headers['content-security-policy'], /unsafe-inline/)
  t.ok(consolePage.headers['set-cookie'], 'the console sets its CSRF cookie')
  const apiAnswer = await th.app.inject({ method: 'GET', url: '/api/plugins/inventory/items', headers: { 'x-tenant': 'acme' } })
  t.equal(apiAnswer.headers['content-security-policy'], undefined, 'no console header on a module route')
  t.equal(apiAnswer.headers['set-cookie'], undefined, 'no cookie either')
  const docs = (await th.app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.notOk(Object.keys(docs.paths).some((p) => p.startsWith('/admin')), 'console pages are not API operations')
})

t.test('behind a proxy that ends TLS, the console takes its own forms (Origin https://, the host on plain HTTP), and no other site\'s', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const form = await th.app.inject({ method: 'GET', url: '/admin/sign-in', headers: { host: 'console.example.com' } })
  const cookie = [form.headers['set-cookie']].flat()[0]!.split(';')[0]
  const token = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]
  const signIn = (origin: string) =>
    th.app.inject({
      method: 'POST',
      url: '/admin/sign-in',
      headers: { host: 'console.example.com', origin, cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: token, operator: 'Di', token: TEST_ADMIN_TOKEN }).toString(),
    })
  const own = await signIn('https://console.example.com')
  t.equal(own.statusCode, 303, "the console's own page, served through the proxy, signs in")
  t.match([own.headers['set-cookie']].flat().join(' '), /plinth_console=.*Secure/, 'with a Secure cookie (not localhost)')
  t.equal((await signIn('https://evil.example.com')).statusCode, 403, 'another site is refused')
  t.equal((await signIn('null')).statusCode, 403, 'an opaque origin is refused')
})

t.test('console sessions: revoked from the CLI, idle ones end', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const th = await startTestHost({ database, env: { PLINTH_CONSOLE_IDLE_MINUTES: '1' } })
  t.teardown(th.close)
  const signIn = async () => {
    const form = await th.app.inject({ method: 'GET', url: '/admin/sign-in' })
    const csrfCookie = [form.headers['set-cookie']].flat()[0]!.split(';')[0]
    const token = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]
    const res = await th.app.inject({
      method: 'POST',
      url: '/admin/sign-in',
      headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: token, operator: 'Bo', token: TEST_ADMIN_TOKEN }).toString(),
    })
    t.equal(res.statusCode, 303)
    return [res.headers['set-cookie']].flat().find((c) => c!.startsWith('plinth_console='))!.split(';')[0]
  }
  const works = async (cookie: string) => (await th.app.inject({ method: 'GET', url: '/admin/tenants', headers: { cookie } })).statusCode === 200
  const first = await signIn()
  const second = await signIn()
  t.ok((await works(first)) && (await works(second)))
  const listed = JSON.parse((await plinth(['console', 'sessions', '--json'], database.env)).stdout)
  t.equal(listed.length, 2)
  const firstId = first.split('=')[1].split('.')[0]
  const revoked = await plinth(['console', 'sessions', 'revoke', firstId], database.env)
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, `revoked console session ${firstId} (Bo)`)
  t.notOk(await works(first), 'a revoked session signs nobody in')
  t.ok(await works(second), 'the other goes on')
  t.equal((await plinth(['console', 'sessions', 'revoke', firstId], database.env)).code, 1, 'revoking it again: no live session has that id')
  // Idle past the timeout (its last use moved back two minutes): ended.
  await th.host.pool.query(`UPDATE public.console_session SET last_seen_at = now() - interval '2 minutes' WHERE id = $1`, [second.split('=')[1].split('.')[0]])
  t.notOk(await works(second), 'an idle session has ended')
  const { rows } = await th.host.pool.query(`SELECT action, actor_kind FROM public.audit_event WHERE action LIKE 'console.%' ORDER BY seq`)
  t.same(rows.map((r) => [r.action, r.actor_kind]), [['console.signed-in', 'console'], ['console.signed-in', 'console'], ['console.session-revoked', 'cli']])
})
