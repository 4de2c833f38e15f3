// Keys and roles as the CLI and the admin API change them (src/rbac/api-keys.ts, roles.ts), in
// process: each refusal has its stable code and field, each write is idempotent where it says so,
// and what a change gives or takes away is seen on the next request.
import t from 'tap'
import { HttpProblem } from '../src/problems.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

/** Rejects with the HttpProblem `code` (and `path`, for a field error). */
async function refused(t: { ok: Function; equal: Function }, work: Promise<unknown>, code: string, path?: string) {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof HttpProblem, `refused with an HttpProblem (${String(err)})`)
  t.equal((err as HttpProblem).code, code)
  if (path) t.equal((err as HttpProblem).options.errors?.[0]?.path, path)
}

t.test('keys: a name of 1 to 100 characters, unique in its tenant; revoking names a key of that tenant', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  const beta = await th.createTenant('beta')
  await refused(t, th.host.keys.create(acme, ''), 'VALIDATION_FAILED', '/name')
  await refused(t, th.host.keys.create(acme, 'x'.repeat(101)), 'VALIDATION_FAILED', '/name')
  await refused(t, th.host.keys.create(acme, 42 as unknown as string), 'VALIDATION_FAILED', '/name')
  t.ok(await th.host.keys.create(acme, 'x'), 'one character is a name')
  const longest = await th.host.keys.create(acme, 'x'.repeat(100))
  t.match(longest.key, /^plk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/)
  await refused(t, th.host.keys.create(acme, 'x'.repeat(100)), 'KEY_EXISTS')
  t.ok(await th.host.keys.create(beta, 'x'.repeat(100)), 'the same name in another tenant is fine')
  await refused(t, th.host.keys.revoke(beta, longest.id), 'KEY_NOT_FOUND')
  await refused(t, th.host.keys.revoke(acme, 'nosuchkey000'), 'KEY_NOT_FOUND')
  const listed = await th.host.keys.list(acme.id)
  t.same(listed.map((k) => k.name), ['x', 'x'.repeat(100)])
  t.notMatch(JSON.stringify(listed), longest.key.slice(`plk_${longest.id}_`.length), 'no secret in a listing')

  // A key is recognised whole: text around it is not a key.
  const items = (authorization: string) => th.app.inject({ url: '/api/plugins/inventory/items', headers: { authorization } })
  await th.host.roles.assign(acme, 'admin', `key:${longest.id}`)
  t.equal((await items(`Bearer ${longest.key}`)).statusCode, 200)
  t.equal((await items(`Bearer  ${longest.key}`)).statusCode, 200, 'extra space after Bearer')
  t.equal((await items(`Bearer x${longest.key}`)).statusCode, 401, 'a prefix makes it no key')
  t.equal((await items(`Bearer ${longest.key}x`)).statusCode, 401, 'a suffix makes it no key')
})

t.test('roles: each refusal with its code; grants and holders are idempotent', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  const roles = th.host.roles
  await refused(t, roles.create(acme, 'Not Valid'), 'VALIDATION_FAILED', '/name')
  await roles.create(acme, 'editor', 'edits things')
  await refused(t, roles.create(acme, 'editor'), 'ROLE_EXISTS')
  await refused(t, roles.remove(acme, 'nobody'), 'ROLE_NOT_FOUND')
  await refused(t, roles.grant(acme, 'nobody', 'inventory.items.read'), 'ROLE_NOT_FOUND')
  await refused(t, roles.grant(acme, 'editor', 'not a grant'), 'VALIDATION_FAILED', '/permission')
  await refused(t, roles.revoke(acme, 'nobody', 'inventory.items.read'), 'ROLE_NOT_FOUND')
  await refused(t, roles.assign(acme, 'nobody', 'user:ada'), 'ROLE_NOT_FOUND')
  await refused(t, roles.assign(acme, 'editor', 'ada'), 'VALIDATION_FAILED', '/principal')
  await refused(t, roles.unassign(acme, 'nobody', 'user:ada'), 'ROLE_NOT_FOUND')

  await roles.grant(acme, 'editor', 'inventory.items.read')
  await roles.grant(acme, 'editor', 'inventory.items.read')
  await roles.grant(acme, 'editor', 'nosuchmodule.*')
  await roles.assign(acme, 'editor', 'user:ada')
  await roles.assign(acme, 'editor', 'user:ada')
  const editor = (await roles.list(acme)).find((r) => r.name === 'editor')!
  t.same(editor, {
    name: 'editor',
    description: 'edits things',
    grants: ['inventory.items.read', 'nosuchmodule.*'],
    principals: ['user:ada'],
    unknownGrants: ['nosuchmodule.*'],
  })

  await roles.revoke(acme, 'editor', 'inventory.items.read')
  await roles.unassign(acme, 'editor', 'user:ada')
  const after = (await roles.list(acme)).find((r) => r.name === 'editor')!
  t.same([after.grants, after.principals], [['nosuchmodule.*'], []], 'the grant revoked, the holder unassigned')
  await roles.remove(acme, 'editor')
  t.notOk((await roles.list(acme)).some((r) => r.name === 'editor'), 'removed')

  // The admin API says the same, in the one error shape.
  const res = await th.app.inject({ method: 'DELETE', url: '/api/admin/tenants/acme/roles/nobody', headers: admin })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'ROLE_NOT_FOUND')
})
