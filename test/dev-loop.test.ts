// The author's settings and dev loop, as processes: the CLI reading .env in its folder (under the
// environment), and `npm run dev` restarting on a changed module file. Apart from author-toolkit.test.ts
// so that the two longest process suites run side by side.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { childEnv, plinth } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const tmp = async (t: { teardown(fn: () => unknown): void }, prefix: string) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

// The dev loop is the author's process, the same whichever database is under it: once per CI, on
// the embedded database, what an author starts with.
const ownRepository = process.env.DATABASE_URL ? { skip: 'runs on the embedded database (npm test without DATABASE_URL): the author flow is the same on both' } : {}

t.test('the CLI reads .env in its folder, under the environment, and names what it knows', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const modules = await tmp(t, 'plinth-dotenv-modules-')
  t.equal((await plinth(['module', 'new', 'shelf', '--dir', modules], {})).code, 0)
  const work = await tmp(t, 'plinth-dotenv-')
  const settings = { ...database.env, PLINTH_MODULE_DIRS: modules }
  await fs.writeFile(path.join(work, '.env'), Object.entries(settings).map(([k, v]) => `${k}=${v}`).join('\n') + '\n')
  const env = { PLINTH_ENV_FILE: '' }

  const created = await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env, work)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, 'modules: inventory, shelf, tickets', 'the module from .env was enabled for the new tenant')

  const unknown = await plinth(['module', 'enable', 'bookings', '--tenant', 'acme'], env, work)
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, 'No module has the id "bookings". Modules found: inventory, tickets, shelf')
  t.match(unknown.stderr, `PLINTH_MODULE_DIRS: ${modules}`)

  const overridden = await plinth(['plugin', 'list'], { ...env, PLINTH_MODULES: 'inventory' }, work)
  t.equal(overridden.code, 0, overridden.stderr)
  t.notMatch(overridden.stdout, 'shelf', 'the environment wins over .env')

  const elsewhere = await plinth(['plugin', 'list'], { ...database.env }, work)
  t.notMatch(elsewhere.stdout, 'shelf', 'PLINTH_ENV_FILE=none reads no file')

  // An edited migration fails the module for the tenant; put back, migrate makes it ready again.
  const migration = path.join(modules, 'shelf/migrations/001_shelf_items.sql')
  const original = await fs.readFile(migration, 'utf8')
  await fs.writeFile(migration, original + '\n-- edited\n')
  const refused = await plinth(['migrate', '--json'], env, work)
  t.equal(refused.code, 1)
  t.match(JSON.parse(refused.stdout).tenants, [{ tenant: 'acme', source: 'shelf', status: 'failed', error: /was edited after it was applied/ }])
  await fs.writeFile(migration, original)
  const recovered = await plinth(['migrate'], env, work)
  t.equal(recovered.code, 0, recovered.stderr)
  t.match(recovered.stdout, /acme shelf: ok, nothing pending; was failed \(.*edited.*\), ready again/)
  const after = await plinth(['migrate'], env, work)
  t.match(after.stdout, 'tenants: nothing pending', 'recovered once, then nothing to say')
})

t.test('npm run dev restarts on a new migration or a changed file in a PLINTH_MODULE_DIRS folder', ownRepository, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const modules = await tmp(t, 'plinth-dev-modules-')
  t.equal((await plinth(['module', 'new', 'shelf', '--dir', modules], {})).code, 0)
  const dev = spawn('npm', ['run', 'dev'], { cwd: PROJECT_ROOT, env: childEnv({ ...database.env, PLINTH_MODULE_DIRS: modules, PORT: '0', LOG_PRETTY: '0' }), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  t.teardown(() => {
    try {
      process.kill(-dev.pid!, 'SIGKILL')
    } catch {}
  })
  let log = ''
  dev.stdout.on('data', (d) => (log += d))
  dev.stderr.on('data', (d) => (log += d))
  const starts = () => log.match(/Server listening at/g)?.length ?? 0
  const waitForStarts = async (n: number) => {
    for (let i = 0; i < 300 && starts() < n; i++) await new Promise((r) => setTimeout(r, 100))
    return starts()
  }
  t.equal(await waitForStarts(1), 1, 'started')
  await fs.writeFile(path.join(modules, 'shelf/migrations/002_more.sql'), 'ALTER TABLE shelf_items ADD COLUMN size int;\n')
  t.equal(await waitForStarts(2), 2, 'a new .sql file restarts it')
  t.match(log, /002_more\.sql/)
  await fs.appendFile(path.join(modules, 'shelf/plugin.ts'), '\n// touched\n')
  t.equal(await waitForStarts(3), 3, 'a changed .ts file restarts it')
})
