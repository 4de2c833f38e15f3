// The module harness as a module author uses it: one module's suites, run alone, as a process.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/host/host.ts'

// `npm run test:plugin` starts a tap runner, and a tap runner clears its project's .tap/processinfo
// as it starts: run inside this suite's own runner, that races the runner's other jobs (ENOTEMPTY).
// So it runs in a checkout of its own: this project's files, linked, in a folder of its own.
async function linkedCheckout(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-checkout-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  await fs.copyFile(path.join(PROJECT_ROOT, 'package.json'), path.join(dir, 'package.json'))
  for (const entry of ['node_modules', 'src', 'scripts', 'migrations', 'tsconfig.json']) {
    await fs.symlink(path.join(PROJECT_ROOT, entry), path.join(dir, entry))
  }
  return dir
}

function npmRun(cwd: string, args: string[]) {
  const run = spawn('npm', ['run', ...args], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  run.stdout.on('data', (d) => (output += d))
  run.stderr.on('data', (d) => (output += d))
  return new Promise<{ code: number | null; output: string }>((resolve) => run.on('close', (code) => resolve({ code, output })))
}

t.test('npm run test:plugin -- tickets runs that module suite and nothing else', async (t) => {
  const { code, output } = await npmRun(await linkedCheckout(t), ['test:plugin', '--', 'tickets'])
  if (code !== 0) t.comment(output.slice(-2000))
  t.equal(code, 0, 'exit 0')
  t.match(output, /src\/plugins\/tickets\/test\/tickets\.test\.ts/)
  t.notMatch(output, /inventory\/test|test\/http\.test/, 'no other suite ran')
  t.match(output, /^ok 1 - src\/plugins\/tickets\/test\/tickets\.test\.ts/m, 'the suite passed')
})

t.test('an unknown module is a usage error', async (t) => {
  const { code, output } = await npmRun(PROJECT_ROOT, ['test:plugin', '--', 'no-such-module'])
  t.equal(code, 2)
  t.match(output, 'no test folder for module no-such-module')
})
