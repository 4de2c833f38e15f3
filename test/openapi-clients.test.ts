// The OpenAPI document as clients no one here wrote read it, against the built host (dist/main.js)
// with both built-in modules:
// - Stoplight Prism 5 (`prism proxy`) validates every request and every response against
//   /docs/json while passing them on to the host. Each call below is made the way the document
//   says (a 401 with a credential that is not valid, a 400 the document allows), and Prism must
//   find nothing to say about any of them;
// - openapi-typescript generates a client's types from the document; a small program calls
//   inventory's CRUD through openapi-fetch with them, is type-checked by tsc, and runs.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { buildOnce } from './helpers/build.ts'
import { postgresPassOnly } from './helpers/passes.ts'
import { childEnv, finished, freePort, startServer } from './helpers/process.ts'

const bin = (name: string) => path.join(PROJECT_ROOT, 'node_modules/.bin', name)

/** `prism proxy` in front of `upstream`, listening on its own port. */
async function startPrism(document: string, upstream: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort()
  const child = spawn(bin('prism'), ['proxy', document, upstream, '--host', '127.0.0.1', '--port', String(port)], {
    env: childEnv({ SCARF_ANALYTICS: 'false' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  for (let waited = 0; !/Prism is listening/.test(output); waited += 100) {
    if (child.exitCode !== null || waited > 30_000) throw new Error(`prism did not start:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url: `http://127.0.0.1:${port}`, child }
}

t.test('the document, as clients read it', postgresPassOnly, async (t) => {
  const build = await buildOnce()
  t.equal(build.code, 0, build.stderr)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer({ ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN }, 'dist/main.js')
  t.teardown(() => server.child.kill('SIGKILL'))
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-openapi-clients-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const document = path.join(dir, 'openapi.json')
  await fs.writeFile(document, await (await fetch(`${server.url}/docs/json`)).text())

  t.test('Prism validates every call and every answer: no violation', async (t) => {
    const prism = await startPrism(document, server.url)
    t.teardown(() => prism.child.kill())
    const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
    const seen: { call: string; status: number; violations: unknown[] }[] = []
    const call = async (method: string, url: string, headers: Record<string, string> = {}, body?: unknown) => {
      const res = await fetch(prism.url + url, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      seen.push({ call: `${method} ${url}`, status: res.status, violations: JSON.parse(res.headers.get('sl-violations') ?? '[]') })
      return { status: res.status, json: () => JSON.parse(text) }
    }

    // Open routes, without a credential
    for (const url of ['/', '/health/live', '/health/ready', '/api/plugins', '/api/plugins/inventory/health', '/api/plugins/tickets/health']) {
      t.equal((await call('GET', url)).status, 200, url)
    }
    // The admin API
    t.equal((await call('POST', '/api/admin/tenants', admin, { code: 'acme', name: 'Acme' })).status, 201)
    t.equal((await call('POST', '/api/admin/tenants', admin, { code: 'beta', name: 'Beta' })).status, 201)
    t.equal((await call('GET', '/api/admin/tenants', admin)).status, 200)
    t.equal((await call('GET', '/api/admin/tenants/acme', admin)).status, 200)
    t.equal((await call('GET', '/api/admin/tenants/nobody', admin)).status, 404, 'a tenant that does not exist: 404')
    t.equal((await call('GET', '/api/admin/tenants/acme/modules', admin)).status, 200)
    t.equal((await call('POST', '/api/admin/tenants/acme/roles', admin, { name: 'reader', description: 'reads' })).status, 201)
    t.equal((await call('PUT', '/api/admin/tenants/acme/roles/reader/grants/inventory.items.read', admin)).status, 204)
    t.equal((await call('GET', '/api/admin/tenants/acme/roles', admin)).status, 200)
    const owner = (await call('POST', '/api/admin/tenants/acme/keys', admin, { name: 'owner', roles: ['admin'] })).json().key
    const readerKey = await call('POST', '/api/admin/tenants/acme/keys', admin, { name: 'reader', roles: ['reader'] })
    const reader = readerKey.json().key
    t.equal((await call('GET', '/api/admin/tenants/acme/keys', admin)).status, 200)
    t.equal((await call('GET', '/api/admin/tenants', { authorization: 'Bearer not-the-admin-token' })).status, 401, 'admin API, a wrong token: 401')

    const acme = { authorization: `Bearer ${owner}`, 'x-tenant': 'acme' }
    // Who am I, and what may I see
    t.equal((await call('GET', '/api/me', acme)).status, 200)
    t.equal((await call('GET', '/api/nav', acme)).status, 200)
    t.equal((await call('GET', '/api/me', { authorization: 'Bearer plk_notakey_notasecret' })).status, 401)
    // Inventory's CRUD, with and without paging parameters
    const items = '/api/plugins/inventory/items'
    const created = await call('POST', items, acme, { name: 'Widget', sku: 'W-1', quantity: 3 })
    t.equal(created.status, 201)
    const id = created.json().id
    t.equal((await call('GET', items, acme)).status, 200, 'list without paging parameters')
    t.equal((await call('GET', `${items}?limit=5&offset=0&name=Wid`, acme)).status, 200, 'list with them')
    t.equal((await call('GET', `${items}/${id}`, acme)).status, 200)
    t.equal((await call('PATCH', `${items}/${id}`, acme, { quantity: 4 })).status, 200)
    t.equal((await call('GET', `${items}/00000000-0000-4000-8000-000000000000`, acme)).status, 404, 'an item that does not exist: 404')
    t.equal((await call('GET', `${items}?offset=100000000000000000000`, acme)).status, 400, 'an offset the document allows and the database refuses: 400')
    t.equal((await call('GET', items, { authorization: 'Bearer plk_notakey_notasecret', 'x-tenant': 'acme' })).status, 401, 'a credential that is not valid: 401')
    t.equal((await call('POST', items, { authorization: `Bearer ${reader}`, 'x-tenant': 'acme' }, { name: 'Nope' })).status, 403, 'without the permission: 403')
    t.equal((await call('GET', items, { authorization: `Bearer ${owner}`, 'x-tenant': 'beta' })).status, 403, "another tenant's x-tenant: 403")
    t.equal((await call('DELETE', `${items}/${id}`, acme)).status, 204)
    // Tickets
    const ticket = await call('POST', '/api/plugins/tickets/tickets', acme, { title: 'Printer on fire', priority: 'high' })
    t.equal(ticket.status, 201)
    t.equal((await call('POST', `/api/plugins/tickets/tickets/${ticket.json().id}/comments`, acme, { body: 'Extinguished.' })).status, 201)
    t.equal((await call('GET', '/api/plugins/tickets/tickets?status=open', acme)).status, 200)
    t.equal((await call('POST', '/api/plugins/tickets/tickets/close-stale', acme, { olderThanSeconds: 3600 })).status, 202)
    // Taking access away again
    t.equal((await call('DELETE', '/api/admin/tenants/acme/roles/reader/grants/inventory.items.read', admin)).status, 204)
    t.equal((await call('DELETE', `/api/admin/tenants/acme/keys/${readerKey.json().id}`, admin)).status, 200)
    t.equal((await call('POST', '/api/admin/tenants/beta/suspend', admin)).status, 200)

    const flagged = seen.filter((s) => s.violations.length > 0)
    t.same(flagged, [], `${seen.length} calls through Prism, none with a violation`)
  })

  t.test('a client generated with openapi-typescript, called through openapi-fetch, type-checks and runs', async (t) => {
    const generated = await finished(spawn(bin('openapi-typescript'), [document, '--output', path.join(dir, 'plinth.d.ts')], { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] }))
    t.equal(generated.code, 0, generated.stderr)
    const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' }
    await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ code: 'gamma', name: 'Gamma' }) })
    const { key } = await (await fetch(`${server.url}/api/admin/tenants/gamma/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'client', roles: ['admin'] }) })).json()
    // What a client author writes: typed paths, bodies and answers; no type is written by hand.
    await fs.writeFile(
      path.join(dir, 'client.ts'),
      `import createClient from 'openapi-fetch'
import type { paths } from './plinth.d.ts'

const client = createClient<paths>({ baseUrl: process.env.PLINTH_URL, headers: { authorization: \`Bearer \${process.env.PLINTH_KEY}\`, 'x-tenant': 'gamma' } })

const created = await client.POST('/api/plugins/inventory/items', { body: { name: 'Widget', quantity: 2 } })
if (!created.data) throw new Error(\`create: \${created.response.status}\`)
const id: string = created.data.id
const page = await client.GET('/api/plugins/inventory/items', { params: { query: { limit: 10 } } })
const names: string[] = (page.data?.items ?? []).map((item) => item.name)
const updated = await client.PATCH('/api/plugins/inventory/items/{id}', { params: { path: { id } }, body: { quantity: 3 } })
const quantity: number | undefined = updated.data?.quantity
const removed = await client.DELETE('/api/plugins/inventory/items/{id}', { params: { path: { id } } })
const missing = await client.GET('/api/plugins/inventory/items/{id}', { params: { path: { id } } })
const problem: string | undefined = missing.error?.error
console.log(JSON.stringify({ names, quantity, removed: removed.response.status, missing: missing.response.status, problem }))
`,
    )
    await fs.writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(PROJECT_ROOT, 'node_modules/@types')] }, files: ['client.ts'] }),
    )
    // The client's folder finds openapi-fetch where a client project would have it installed.
    await fs.mkdir(path.join(dir, 'node_modules'))
    await fs.symlink(path.join(PROJECT_ROOT, 'node_modules/openapi-fetch'), path.join(dir, 'node_modules/openapi-fetch'))
    await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n')
    const types = await finished(spawn(process.execPath, [path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] }))
    t.equal(types.code, 0, `tsc: ${types.stdout}${types.stderr}`)
    const run = await finished(
      spawn(process.execPath, ['--import', 'tsx', path.join(dir, 'client.ts')], { cwd: PROJECT_ROOT, env: childEnv({ PLINTH_URL: server.url, PLINTH_KEY: key }), stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    t.equal(run.code, 0, run.stderr)
    t.same(JSON.parse(run.stdout), { names: ['Widget'], quantity: 3, removed: 204, missing: 404, problem: 'NOT_FOUND' })
  })
})
