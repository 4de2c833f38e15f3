// The module author's toolkit, used as an author uses it, as processes: `plinth module new`, the
// module's own suite (`npx tap` in its own repository, `npm run test:module` in plinth's), its
// types and the built host loading it. The settings file and the dev loop: dev-loop.test.ts.
// (tap starts files in name order, two at a time: the suite's longest files have names that
// sort early, so none of them is left running alone at the end of a pass.)
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { buildOnce } from './helpers/build.ts'
import { childEnv, finished, plinth, startServer } from './helpers/process.ts'

const tmp = async (t: { teardown(fn: () => unknown): void }, prefix: string) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A command as an author types it in a shell, in `cwd`: none of this suite's own tap runner's
 * settings (TAP_CWD and the like would make a tap started there run this project's tests).
 */
function run(command: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  const shell = Object.fromEntries(Object.entries(childEnv(env)).filter(([name]) => !/^(TAP|_TAPJS)/.test(name)))
  return finished(spawn(command, args, { cwd, env: shell, stdio: ['ignore', 'pipe', 'pipe'] }))
}

const output = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr

/** Asserts a command succeeded; when it did not, what it printed goes in the test's output. */
function succeeded(t: { equal(a: unknown, b: unknown, m: string): unknown; comment(m: string): unknown }, result: { code: number | null; stdout: string; stderr: string }, what: string) {
  if (result.code !== 0) t.comment(output(result).slice(-3000))
  t.equal(result.code, 0, what)
}

// The test database's settings, for children: DATABASE_URL is the server's (the harness makes a
// database of its own there); without it, each suite is embedded.
const serverEnv = process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}

// These are the author's processes (npm, tap, tsc, the CLI, the dev loop), the same whichever
// database is under them, and the suite's longest: they run once per CI, on the embedded database,
// the harness's default and what a module author starts with.
const ownRepository = process.env.DATABASE_URL ? { skip: 'runs on the embedded database (npm test without DATABASE_URL): the author flow is the same on both' } : {}

t.test('a scaffolded module in its own repository: installs, passes its suite and typecheck, and the built host serves it', ownRepository, async (t) => {
  const repo = await tmp(t, 'plinth-modules-')
  const made = await plinth(['module', 'new', 'bookings', '--dir', repo], {})
  t.equal(made.code, 0, made.stderr)
  t.match(made.stdout, `created module bookings in ${path.join(repo, 'bookings')}`)
  for (const file of ['bookings/module.config.ts', 'bookings/plugin.ts', 'bookings/migrations/001_bookings_items.sql', 'bookings/test/bookings.test.ts', 'package.json', 'tsconfig.json']) {
    t.match(made.stdout, file)
    await t.resolves(fs.access(path.join(repo, file)), `${file} written`)
  }

  const again = await plinth(['module', 'new', 'bookings', '--dir', repo], {})
  t.equal(again.code, 1)
  t.match(again.stderr, `plinth: ${path.join(repo, 'bookings')} already exists`)
  const bad = await plinth(['module', 'new', 'Bad_Id', '--dir', repo], {})
  t.equal(bad.code, 1)
  t.match(bad.stderr, '"Bad_Id" is not a module id')

  // Before npm install: the runner says what to do, not npx's "canceled due to missing packages".
  const early = await run('npm', ['run', 'test:plugin', '--', 'bookings'], PROJECT_ROOT, { ...serverEnv, PLINTH_MODULE_DIRS: repo })
  t.equal(early.code, 2, 'test:plugin before npm install exits 2')
  t.match(early.stderr, `run \`npm install\` in ${repo} first`)

  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], repo)
  succeeded(t, install, 'npm install')

  const suite = await run('npx', ['tap'], repo, serverEnv)
  succeeded(t, suite, 'its suite passes')
  t.match(output(suite), /# \{ total: \d+, pass: \d+ \}/)
  t.notMatch(output(suite), /fail:/)

  const types = await run('npm', ['run', 'typecheck'], repo)
  succeeded(t, types, 'npm run typecheck')

  // A mistake in the author's expectation: the failure shows the answer and the request's log.
  const testFile = path.join(repo, 'bookings/test/bookings.test.ts')
  const source = await fs.readFile(testFile, 'utf8')
  await fs.writeFile(testFile, source.replace('expectStatus(t, created, 201)', 'expectStatus(t, created, 200)'))
  const failing = await run('npx', ['tap', 'bookings/test/bookings.test.ts'], repo, serverEnv)
  t.equal(failing.code, 1)
  t.match(output(failing), /-200\s+\+201/, 'the status it wanted and the one it got')
  t.match(output(failing), /name: First/, 'the body it got')
  t.match(output(failing), /msg: item created/, "the request's log lines")
  t.match(output(failing), /fileName: bookings\/test\/bookings\.test\.ts/, "pointing at the test's line")
  await fs.writeFile(testFile, source)

  const build = await buildOnce()
  t.equal(build.code, 0, build.stderr)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer({ ...database.env, PLINTH_MODULE_DIRS: repo, PLINTH_STRICT_MODULES: '1' }, 'dist/main.js')
  t.teardown(() => server.child.kill('SIGKILL'))
  const listed = await (await fetch(`${server.url}/api/plugins`)).json()
  t.same(
    listed.plugins.map((p: { id: string; status: string }) => `${p.id} ${p.status}`).sort(),
    ['bookings loaded', 'inventory loaded', 'tickets loaded'],
    'its node_modules is not a module',
  )
})

t.test('plinth module new in this repository: npm run test:module runs its suite, and only it', ownRepository, async (t) => {
  // A checkout of its own (src copied, the rest linked): the module is written into its src/plugins.
  const checkout = await tmp(t, 'plinth-checkout-')
  await fs.cp(path.join(PROJECT_ROOT, 'src'), path.join(checkout, 'src'), { recursive: true })
  // Copied, not linked: Node runs a linked script from where it really is, the project.
  for (const entry of ['bin', 'scripts']) await fs.cp(path.join(PROJECT_ROOT, entry), path.join(checkout, entry), { recursive: true })
  await fs.copyFile(path.join(PROJECT_ROOT, 'package.json'), path.join(checkout, 'package.json'))
  for (const entry of ['node_modules', 'migrations', 'tsconfig.json']) await fs.symlink(path.join(PROJECT_ROOT, entry), path.join(checkout, entry))

  const made = await run(process.execPath, ['bin/plinth.js', 'module', 'new', 'shelf'], checkout)
  t.equal(made.code, 0, made.stderr)
  t.match(made.stdout, `created module shelf in ${path.join(checkout, 'src/plugins/shelf')}`)
  t.match(made.stdout, 'npm run test:module -- shelf')
  t.notMatch(made.stdout, 'package.json', 'inside plinth it needs no package of its own')

  const suite = await run('npm', ['run', 'test:module', '--', 'shelf'], checkout, serverEnv)
  succeeded(t, suite, 'its suite passes')
  t.match(output(suite), /^ok 1 - src\/plugins\/shelf\/test\/shelf\.test\.ts/m)
  t.notMatch(output(suite), /inventory\/test|tickets\/test/, 'no other suite ran')

  const unknown = await run('npm', ['run', 'test:module', '--', 'no-such-module'], checkout)
  t.equal(unknown.code, 2)
  t.match(output(unknown), 'no test folder for module no-such-module')
})

t.test("a stranger's module folder with no package.json: test:module gives its suite plinth/testing", async (t) => {
  const dir = await tmp(t, 'plinth-stranger-')
  await fs.cp(path.join(PROJECT_ROOT, 'test/fixtures/stranger/bookings'), path.join(dir, 'bookings'), { recursive: true })
  await fs.mkdir(path.join(dir, 'bookings/test'))
  await fs.writeFile(
    path.join(dir, 'bookings/test/rooms.test.ts'),
    `import t from 'tap'
import { expectStatus, startModuleHost } from 'plinth/testing'

const h = await startModuleHost(t)
const desk = await h.client({ tenant: 'acme', permissions: ['bookings.bookings.read', 'bookings.bookings.write'] })
t.test('a booking is made and listed', async (t) => {
  expectStatus(t, await desk.post('/bookings', { guest: 'Ada', nights: 2 }), 201)
  t.match((await desk.get('/bookings')).json(), { bookings: [{ guest: 'Ada', nights: 2 }] })
})
`,
  )
  const suite = await run('npm', ['run', 'test:module', '--', 'bookings'], PROJECT_ROOT, { ...serverEnv, PLINTH_MODULE_DIRS: dir })
  succeeded(t, suite, 'its suite passes')
  t.match(output(suite), /# \{ total: 2, pass: 2 \}/)
  const strays = (await fs.readdir(PROJECT_ROOT)).filter((entry) => entry === 'tmp' || entry.startsWith('plinth-stranger'))
  t.same(strays, [], "tap's results for a module outside the project are not written into the project")
})

