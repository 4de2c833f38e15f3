// The CLI's key, role and module commands as an operator runs them (real processes): what they
// print, their exit codes (0 done, 1 refused, 2 usage), and no secret ever shown twice. And the
// admin API with no PLINTH_ADMIN_TOKEN: every call refused.
import t from 'tap'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost } from '../src/testing/host.ts'
import { assertProblem } from './helpers/problem.ts'
import { plinth } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

// Some twenty CLI processes: on the PostgreSQL pass only, to keep CI under its time. The commands
// reach the database through the same Host on both; test/cli.test.ts runs the CLI on the embedded one.

t.test('key, role and module commands: output, exit codes, and a secret shown once', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = database.env
  t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)

  const created = await plinth(['key', 'create', '--tenant', 'acme', '--name', 'ci-bot', '--json'], env)
  t.equal(created.code, 0, created.stderr)
  const key = JSON.parse(created.stdout)
  t.match(key, { id: /^[a-z0-9]{12}$/, name: 'ci-bot', key: /^plk_[a-z0-9]{12}_[\w-]{43}$/ })
  const secret = key.key.slice(`plk_${key.id}_`.length)

  const list = await plinth(['key', 'list', '--tenant', 'acme'], env)
  t.equal(list.code, 0)
  t.match(list.stdout, key.id)
  t.notMatch(list.stdout, secret, 'key list never shows a secret')
  const listJson = await plinth(['key', 'list', '--tenant', 'acme', '--json'], env)
  t.notMatch(listJson.stdout, secret)
  t.same(Object.keys(JSON.parse(listJson.stdout)[0]).sort(), ['createdAt', 'id', 'name', 'revokedAt', 'tenantId'], 'nor any hash of it')

  t.equal((await plinth(['key', 'create', '--tenant', 'acme'], env)).code, 2, 'a missing --name is a usage error')
  const duplicate = await plinth(['key', 'create', '--tenant', 'acme', '--name', 'ci-bot'], env)
  t.equal(duplicate.code, 1, 'a refused command exits 1')
  t.match(duplicate.stderr, /already has a key with this name/)
  const unknown = await plinth(['key', 'revoke', 'aaaaaaaaaaaa', '--tenant', 'acme'], env)
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /no key with this id/)
  const revoked = await plinth(['key', 'revoke', key.id, '--tenant', 'acme'], env)
  t.equal(revoked.code, 0)
  t.match(revoked.stdout, `revoked key ${key.id} (ci-bot)`)

  t.equal((await plinth(['role', 'create', 'editor', '--tenant', 'acme'], env)).code, 0)
  t.equal((await plinth(['role', 'grant', 'editor', 'inventory.items.*', '--tenant', 'acme'], env)).code, 0)
  t.equal((await plinth(['role', 'assign', 'editor', '--principal', `key:${key.id}`, '--tenant', 'acme'], env)).code, 0)
  const roles = JSON.parse((await plinth(['role', 'list', '--tenant', 'acme', '--json'], env)).stdout)
  t.match(roles.find((r: any) => r.name === 'editor'), { grants: ['inventory.items.*'], principals: [`key:${key.id}`], unknownGrants: [] })
  t.equal((await plinth(['role', 'grant', 'editor', 'not a permission', '--tenant', 'acme'], env)).code, 1, 'a malformed grant is refused')
  t.equal((await plinth(['role', 'assign', 'nobody', '--principal', 'key:x', '--tenant', 'acme'], env)).code, 1, 'an unknown role is refused')
  t.equal((await plinth(['role', 'unassign', 'editor', '--principal', `key:${key.id}`, '--tenant', 'acme'], env)).code, 0)
  t.equal((await plinth(['role', 'delete', 'editor', '--tenant', 'acme'], env)).code, 0)

  const modules = JSON.parse((await plinth(['module', 'list', '--json'], env)).stdout)
  t.match(modules, [{ id: 'inventory', status: 'found' }, { id: 'tickets', status: 'found' }])
  t.equal((await plinth(['module', 'disable', 'tickets', '--tenant', 'acme'], env)).code, 0)
  const aliased = await plinth(['plugin', 'enable', 'tickets', '--tenant', 'acme'], { ...env, PLINTH_DEFAULT_PLUGINS: '*' })
  t.equal(aliased.code, 0, 'the deprecated names still work')
  t.match(aliased.stderr, 'plinth: "plinth plugin enable" is deprecated: name it "plinth module enable"')
  t.match(aliased.stderr, 'plinth: PLINTH_DEFAULT_PLUGINS is deprecated: name it PLINTH_DEFAULT_MODULES')
  const nothing = await plinth(['module', 'enable', 'nosuch', '--tenant', 'acme'], env)
  t.equal(nothing.code, 1)
  t.match(nothing.stderr, /No module has the id "nosuch"/)
  t.equal((await plinth(['module', 'enable', 'tickets'], env)).code, 2, 'a missing --tenant is a usage error')
})

t.test('with no PLINTH_ADMIN_TOKEN, the admin API refuses every call, whatever it is sent', async (t) => {
  const th = await startTestHost({ env: { PLINTH_ADMIN_TOKEN: '' } })
  t.teardown(th.close)
  for (const authorization of [undefined, 'Bearer ', 'Bearer undefined', 'Bearer test-admin-token-0123456789abcdef']) {
    const res = await th.app.inject({ url: '/api/admin/tenants', headers: authorization === undefined ? {} : { authorization } })
    assertProblem(t, res, 401, 'UNAUTHORIZED')
  }
  t.ok(th.logs.some((l) => l.msg === 'admin authentication failed' && l.reason === 'PLINTH_ADMIN_TOKEN is not set'), 'the log says why')
})
