// Runs plinth's own entry points as real processes, the way an operator would.
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { PROJECT_ROOT } from '../../src/app/paths.ts'

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * The environment of a child: the test database's, and nothing inherited that points elsewhere;
 * no .env either (a developer's own would), unless the test names one with PLINTH_ENV_FILE.
 */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const { DATABASE_URL: _url, PLINTH_DATA_DIR: _dir, PLINTH_MODULE_DIRS: _dirs, PLINTH_PLUGIN_DIRS: _oldDirs, ...rest } = process.env
  // A server runs no jobs here unless its test asks (PLINTH_JOBS: '1'): a worker polling in each of
  // the suite's many servers costs CPU their tests do not look at. test/jobs.test.ts holds the
  // default (on) to its word.
  return { PLINTH_JOBS: '0', ...rest, PLINTH_ENV_FILE: 'none', ...env }
}

export function startTs(file: string, args: string[], env: Record<string, string | undefined>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, file), ...args], {
    cwd: PROJECT_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

export function finished(child: ChildProcess): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => (stdout += d))
  child.stderr?.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
}

export function runTs(file: string, args: string[], env: Record<string, string | undefined>) {
  return finished(startTs(file, args, env))
}

/** `plinth <args>` as a real process (in the project folder, or in `cwd`). */
export function plinth(args: string[], env: Record<string, string | undefined>, cwd = PROJECT_ROOT) {
  return finished(
    spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), ...args], {
      cwd,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
}

export interface ServerProcess {
  child: ChildProcess
  url: string
  /** Everything the process has written so far. */
  output(): string
  exit: Promise<Finished>
}

/** `node <file>`: plain JavaScript, no TypeScript loader, as the built host runs. */
export function startJs(file: string, env: Record<string, string | undefined>): ChildProcess {
  return spawn(process.execPath, [path.join(PROJECT_ROOT, file)], { cwd: PROJECT_ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Starts a server process on a free port and resolves once it listens. A .js file runs without tsx. */
export async function startServer(env: Record<string, string | undefined>, file = 'test/fixtures/server.ts'): Promise<ServerProcess> {
  const serverEnv = { PORT: '0', LOG_LEVEL: 'info', ...env }
  const child = file.endsWith('.js') ? startJs(file, serverEnv) : startTs(file, [], serverEnv)
  const exit = finished(child)
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) resolve(match[1])
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    exit.then((r) => reject(new Error(`server exited (${r.code}) before listening:\n${output}`)))
  })
  return { child, url, output: () => output, exit }
}

/** A port nothing listens on now: for a process that is told its port rather than asked for it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo
      probe.close(() => resolve(port))
    })
  })
}
