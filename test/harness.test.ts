// The module harness as a module author uses it: one module's suites, run alone, as a process.
import { spawn } from 'node:child_process'
import t from 'tap'
import { PROJECT_ROOT } from '../src/host/host.ts'

t.test('npm run test:plugin -- tickets runs that module suite and nothing else', async (t) => {
  const run = spawn('npm', ['run', 'test:plugin', '--', 'tickets'], { cwd: PROJECT_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  run.stdout.on('data', (d) => (output += d))
  run.stderr.on('data', (d) => (output += d))
  const code = await new Promise((resolve) => run.on('close', resolve))
  if (code !== 0) t.comment(output.slice(-2000))
  t.equal(code, 0, 'exit 0')
  t.match(output, /src\/plugins\/tickets\/test\/tickets\.test\.ts/)
  t.notMatch(output, /inventory\/test|test\/http\.test/, 'no other suite ran')
  t.match(output, /^ok 1 - src\/plugins\/tickets\/test\/tickets\.test\.ts/m, 'the suite passed')
})

t.test('an unknown module is a usage error', async (t) => {
  const run = spawn('npm', ['run', 'test:plugin', '--', 'no-such-module'], { cwd: PROJECT_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  run.stderr.on('data', (d) => (output += d))
  t.equal(await new Promise((resolve) => run.on('close', resolve)), 2)
  t.match(output, 'no test folder for module no-such-module')
})
