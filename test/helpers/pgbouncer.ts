// A real PgBouncer (Debian's `pgbouncer`) in front of the test PostgreSQL, for the suites that
// promise plinth works behind one: transaction or session pooling, on a free loopback port, every
// database passed through. The server's own user (the platform's login) is trusted, as the test
// server trusts it; every other user, the tenant roles, authenticates by SCRAM against the
// verifier PgBouncer reads with auth_query (docs/scale-out.md: the same setup in production). `scripts/pgbouncer.sh` starts the
// same for .ci/run's pass of the suites through PgBouncer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export interface PgBouncer {
  port: number
  /** `serverUrl` with its host and port turned to this PgBouncer's. */
  urlFor(serverUrl: string): string
  stop(): Promise<void>
}

export function pgbouncerBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate
  }
  return undefined
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

/** The configuration file for a PgBouncer on `port` in front of `target` (host:port). */
export function pgbouncerConfig(dir: string, port: number, mode: 'transaction' | 'session', target: { host: string; port: number; user: string }) {
  return [
    '[databases]',
    `* = host=${target.host} port=${target.port}`,
    '[pgbouncer]',
    `listen_addr = 127.0.0.1`,
    `listen_port = ${port}`,
    `unix_socket_dir =`,
    `auth_type = hba`,
    `auth_hba_file = ${path.join(dir, 'hba.conf')}`,
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `auth_user = ${target.user}`,
    `auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1`,
    `pool_mode = ${mode}`,
    `max_client_conn = 1000`,
    `default_pool_size = 40`,
    `max_db_connections = 80`,
    // Test databases come and go: drop their pools when idle.
    `autodb_idle_timeout = 10`,
    `ignore_startup_parameters = extra_float_digits,options`,
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n')
}

export async function startPgBouncer(mode: 'transaction' | 'session', serverUrl: string): Promise<PgBouncer> {
  const binary = pgbouncerBinary()
  if (!binary) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-pgbouncer-'))
  const target = new URL(serverUrl)
  const port = await freePort()
  const user = decodeURIComponent(target.username || 'postgres')
  await fs.writeFile(path.join(dir, 'userlist.txt'), `"${user}" ""\n`)
  await fs.writeFile(path.join(dir, 'hba.conf'), `host all ${user} 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n`)
  await fs.writeFile(path.join(dir, 'pgbouncer.ini'), pgbouncerConfig(dir, port, mode, { host: target.hostname, port: Number(target.port || 5432), user }))
  // PgBouncer will not run as root: it drops to the postgres user, who must read its files.
  const asRoot = process.getuid?.() === 0
  if (asRoot) await fs.chmod(dir, 0o777)
  const child: ChildProcess = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // A test process that exits without its teardown (process.exit, a fatal error) takes its
  // PgBouncer with it: one left running keeps its server connections, and whatever they hold.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  for (let waited = 0; ; waited += 50) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (up) break
    if (child.exitCode !== null || waited > 10_000) {
      const log = await fs.readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '')
      throw new Error(`pgbouncer did not start: ${output}\n${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    urlFor(url: string) {
      const through = new URL(url)
      through.hostname = '127.0.0.1'
      through.port = String(port)
      return through.toString()
    },
    async stop() {
      process.off('exit', killOnExit)
      child.kill('SIGTERM')
      await exited
      await fs.rm(dir, { recursive: true, force: true })
    },
  }
}
