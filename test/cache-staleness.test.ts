// Caches across instances and topologies: a key revoked or a tenant suspended through the CLI stops
// being honoured on every running instance within 1 s of the command returning, and a key created
// through the CLI works on the very next request, directly on PostgreSQL, through PgBouncer in
// transaction and in session mode, and on the embedded database. Two hosts starting at once behind
// PgBouncer in transaction mode apply each migration exactly once.
import pg from 'pg'
import t, { type Test } from 'tap'
import { createTestDatabase, type TestDatabase } from '../src/testing/database.ts'
import { TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { pgbouncerBinary, startPgBouncer } from './helpers/pgbouncer.ts'
import { plinth, startServer, type ServerProcess } from './helpers/process.ts'

const BOUND_MS = 1000
type Topology = 'direct' | 'pgbouncer-transaction' | 'pgbouncer-session' | 'embedded'

const serverUrl = process.env.DATABASE_URL
const topologies: Topology[] = serverUrl ? ['direct'] : ['embedded']
if (serverUrl && pgbouncerBinary()) topologies.push('pgbouncer-transaction', 'pgbouncer-session')
else if (serverUrl) t.comment('PgBouncer topologies skipped: install Debian\'s pgbouncer (apt-get install pgbouncer) to run them')

/** A fresh database, and the environment that reaches it on the given topology. */
async function databaseOn(t: Test, topology: Topology): Promise<{ database: TestDatabase; env: Record<string, string> }> {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  if (!topology.startsWith('pgbouncer')) return { database, env: { ...database.env } }
  const bouncer = await startPgBouncer(topology === 'pgbouncer-session' ? 'session' : 'transaction', database.env.DATABASE_URL!)
  // Stopped before the database is dropped (teardowns run last first).
  t.teardown(bouncer.stop)
  return { database, env: { ...database.env, DATABASE_URL: bouncer.urlFor(database.env.DATABASE_URL!) } }
}

interface Answer {
  startedAt: number
  status: number
}

/** Requests with `key`, one after another on each host, until `until()` says stop. */
async function stream(hosts: ServerProcess[], key: string, path: string, until: () => boolean): Promise<Answer[]> {
  const answers: Answer[] = []
  await Promise.all(
    hosts.map(async (host) => {
      while (!until()) {
        const startedAt = Date.now()
        const res = await fetch(`${host.url}${path}`, { headers: { authorization: `Bearer ${key}` } })
        await res.arrayBuffer()
        answers.push({ startedAt, status: res.status })
        await new Promise((r) => setTimeout(r, 10))
      }
    }),
  )
  return answers
}

/**
 * A steady stream of requests with `key` on every host; half a second in, `command` runs through
 * the CLI. Requests started more than the bound after it returned must all have been refused.
 */
async function changeMidStream(t: Test, hosts: ServerProcess[], key: string, command: string[], env: Record<string, string>, what: string, path = '/api/me') {
  let returnedAt = Infinity
  const change = (async () => {
    await new Promise((r) => setTimeout(r, 500))
    const done = await plinth(command, env)
    t.equal(done.code, 0, done.stderr)
    returnedAt = Date.now()
  })()
  const answers = await stream(hosts, key, path, () => Date.now() > returnedAt + BOUND_MS + 1500)
  await change
  const late = answers.filter((a) => a.startedAt > returnedAt + BOUND_MS)
  t.ok(answers.some((a) => a.status === 200 && a.startedAt < returnedAt), `served before ${what}`)
  t.ok(late.length > 20, `requests kept coming after the bound (${late.length})`)
  t.same(late.filter((a) => a.status < 300).length, 0, `no request more than ${BOUND_MS} ms after ${what} returned was answered 2xx`)
}

async function startHosts(t: Test, env: Record<string, string>, count: number) {
  const hosts = await Promise.all(Array.from({ length: count }, () => startServer({ ...env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_AUTH_FAILURE_LIMIT: '100000' })))
  for (const host of hosts) t.teardown(() => host.child.kill('SIGKILL'))
  return hosts
}

for (const topology of topologies) {
  t.test(`${topology}: a new key and a new grant work at once; a revoke and a suspension stop it within ${BOUND_MS} ms on every instance`, async (t) => {
    const { env } = await databaseOn(t, topology)
    // The embedded database has one owner process: one host there, the CLI as its guest.
    const hosts = await startHosts(t, env, topology === 'embedded' ? 1 : 2)
    t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)

    const created = await plinth(['key', 'create', '--tenant', 'acme', '--name', 'first', '--role', 'admin', '--json'], env)
    t.equal(created.code, 0, created.stderr)
    const first = JSON.parse(created.stdout).key
    for (const host of hosts) {
      const res = await fetch(`${host.url}/api/me`, { headers: { authorization: `Bearer ${first}` } })
      t.equal(res.status, 200, 'the very first request after `key create` returned is accepted')
    }

    // A grant made through the CLI: the very next request may use it, on every instance.
    t.equal((await plinth(['role', 'create', 'reader', '--tenant', 'acme'], env)).code, 0)
    const readerKey = JSON.parse((await plinth(['key', 'create', '--tenant', 'acme', '--name', 'reader', '--role', 'reader', '--json'], env)).stdout)
    const reader = readerKey.key
    const items = (host: ServerProcess) => fetch(`${host.url}/api/plugins/inventory/items`, { headers: { authorization: `Bearer ${reader}` } })
    for (const host of hosts) t.equal((await items(host)).status, 403, 'nothing granted yet')
    t.equal((await plinth(['role', 'grant', 'reader', 'inventory.items.read', '--tenant', 'acme'], env)).code, 0)
    for (const host of hosts) t.equal((await items(host)).status, 200, 'the first request after `role grant` returned may read')

    const ITEMS = '/api/plugins/inventory/items'
    // Session mode follows changes as direct does (LISTEN): these run once per way of following.
    if (topology !== 'pgbouncer-session') {
      await changeMidStream(t, hosts, reader, ['role', 'unassign', 'reader', '--principal', `key:${readerKey.id}`, '--tenant', 'acme'], env, 'the unassign', ITEMS)
      await changeMidStream(t, hosts, first, ['module', 'disable', 'inventory', '--tenant', 'acme'], env, 'the module disable', ITEMS)
      t.equal((await plinth(['module', 'enable', 'inventory', '--tenant', 'acme'], env)).code, 0)
      const enabledAt = Date.now()
      for (const host of hosts) {
        let status = 0
        while (status !== 200 && Date.now() - enabledAt < BOUND_MS + 500) status = (await fetch(`${host.url}${ITEMS}`, { headers: { authorization: `Bearer ${first}` } })).status
        t.equal(status, 200, 'served again once `plugin enable` returned, on every instance')
        t.ok(Date.now() - enabledAt <= BOUND_MS + 500, `within the bound (${Date.now() - enabledAt} ms)`)
      }
    }

    await changeMidStream(t, hosts, first, ['key', 'revoke', JSON.parse(created.stdout).id, '--tenant', 'acme'], env, 'the revoke')
    const second = JSON.parse((await plinth(['key', 'create', '--tenant', 'acme', '--name', 'second', '--role', 'admin', '--json'], env)).stdout).key
    await changeMidStream(t, hosts, second, ['tenant', 'suspend', 'acme'], env, 'the suspension')

    for (const host of hosts) {
      const ready = await (await fetch(`${host.url}/health/ready`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).json()
      t.match(ready, { ok: true, changeFeed: { mode: topology === 'direct' || topology === 'pgbouncer-session' ? 'listen' : 'poll' } }, 'ready, and says how it follows changes')
    }
  })
}

if (serverUrl && pgbouncerBinary()) {
  t.test('two hosts starting at once behind PgBouncer in transaction mode apply each migration once', async (t) => {
    const { database, env } = await databaseOn(t, 'pgbouncer-transaction')
    const hosts = await startHosts(t, env, 2)
    t.equal(hosts.length, 2, 'both started')
    const direct = new pg.Client({ connectionString: database.env.DATABASE_URL })
    await direct.connect()
    t.teardown(() => direct.end())
    const { rows } = await direct.query('SELECT name, count(*)::int AS n FROM public.sys_migration GROUP BY name ORDER BY name')
    t.ok(rows.length >= 3)
    t.same(rows.filter((r) => r.n !== 1), [], 'every public migration recorded once')
    const locks = await direct.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")
    t.equal(locks.rows[0].n, 0, 'no advisory lock is left held on a pooled server connection')
    const created = await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)
    t.equal(created.code, 0, 'tenant create works through it')
    const migrate = await plinth(['migrate'], env)
    t.equal(migrate.code, 0, 'and so does plinth migrate')
  })

}

if (serverUrl) {
  t.test('the change feed reports a lost database, refuses to serve from stale caches, and catches up', async (t) => {
    const { database, env } = await databaseOn(t, 'direct')
    const [host] = await startHosts(t, env, 1)
    t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)
    const key = JSON.parse((await plinth(['key', 'create', '--tenant', 'acme', '--name', 'k', '--role', 'admin', '--json'], env)).stdout).key
    t.equal((await fetch(`${host.url}/api/me`, { headers: { authorization: `Bearer ${key}` } })).status, 200)
    // Every connection of the host's is cut, and new ones refused, for 2 s.
    const admin = new pg.Client({ connectionString: serverUrl })
    await admin.connect()
    t.teardown(() => admin.end())
    const name = new URL(database.env.DATABASE_URL!).pathname.slice(1)
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
    await new Promise((r) => setTimeout(r, BOUND_MS + 600))
    const ready = await fetch(`${host.url}/health/ready`)
    t.equal(ready.status, 503, '/health/ready says so past the bound')
    // Log lines leave in 4 KiB writes, or 250 ms after the first one waiting.
    const probeWarned = /"level":40,[^\n]*"url":"\/health\/ready"[^\n]*"status":503/
    for (let i = 0; i < 20 && !probeWarned.test(host.output()); i++) await new Promise((r) => setTimeout(r, 100))
    t.match(host.output(), probeWarned, 'a failing probe is logged at warn')
    const refused = await fetch(`${host.url}/api/me`, { headers: { authorization: `Bearer ${key}` } })
    t.equal(refused.status, 503, 'a request is refused rather than served from caches that may be stale')
    t.equal((await refused.json()).error, 'NOT_READY')
    t.match(host.output(), /change feed is behind/)
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
    let back = 0
    for (let i = 0; i < 50 && back !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100))
      back = (await fetch(`${host.url}/api/me`, { headers: { authorization: `Bearer ${key}` } })).status
    }
    t.equal(back, 200, 'served again once the feed caught up')
    // Log lines are flushed every 250 ms.
    for (let i = 0; i < 20 && !/change feed caught up/.test(host.output()); i++) await new Promise((r) => setTimeout(r, 100))
    t.match(host.output(), /change feed caught up/)
  })
}
