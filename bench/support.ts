// Shared by the benchmarks: a bench database with one tenant and data, server processes, load.
import autocannon from 'autocannon'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import { loadConfig } from '../src/app/config.ts'
import { Host } from '../src/app/host.ts'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createLogger } from '../src/platform/logger.ts'
import { freePort } from '../test/helpers/process.ts'

export function requireDatabaseUrl(): string {
  const url = process.env.DATABASE_URL
  if (!url) {
    process.stderr.write('The benchmarks need a PostgreSQL server: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).\n')
    process.exit(2)
  }
  return url
}

export async function openBenchHost(env: Record<string, string>) {
  const config = loadConfig({ LOG_LEVEL: 'warn', ...env })
  return Host.open({ config, log: createLogger(config, process.stderr) })
}

/** Tenant `bench`: 20 inventory items, and an API key whose role may read and create them. */
export async function createBenchTenant(host: Host) {
  const tenant = await host.tenants.create({ code: 'bench', name: 'Bench' })
  await host.withTenantTx(tenant.id, async (db) => {
    for (let i = 0; i < 20; i++) await db.execute(sql`INSERT INTO items (name, quantity) VALUES (${`item ${String(i).padStart(2, '0')}`}, ${i})`)
  })
  await host.roles.create(tenant, 'bench')
  for (const p of ['inventory.items.read', 'inventory.items.create', 'seedstyle.items.read']) await host.roles.grant(tenant, 'bench', p)
  const { key } = await host.createKey('bench', 'bench', ['bench'])
  return { tenant, key }
}

export interface Server {
  name: string
  url: string
  child: ChildProcess
  stop(): Promise<void>
}

/** `npm run build`: the benchmarks run plinth as `npm start` does, from dist/. */
export function buildPlinth() {
  execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts/build.js')], { stdio: 'inherit' })
}

/**
 * Starts a server process and resolves with its URL once it listens: once it logs that it does,
 * or, for a plinth started with LOG_LEVEL above info (which logs no such line), once its
 * /health/live answers on a port chosen here. A .js file runs without tsx.
 */
export async function startServer(name: string, file: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Server> {
  const quiet = env.LOG_LEVEL !== undefined && !['info', 'debug', 'trace'].includes(env.LOG_LEVEL)
  const port = quiet ? await freePort() : undefined
  const loader = file.endsWith('.js') ? [] : ['--import', 'tsx']
  const child = spawn(process.execPath, [...nodeArgs, ...loader, path.join(PROJECT_ROOT, file)], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, ...(port ? { PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const server = (url: string): Server => ({ name, url, child, stop: () => new Promise((done) => (child.once('exit', () => done()), child.kill('SIGTERM'))) })
  return new Promise((resolve, reject) => {
    let seen = ''
    let listening = false
    const ready = (url: string) => {
      listening = true
      child.stdout!.removeListener('data', onData)
      child.stdout!.resume()
      child.stderr!.resume()
      resolve(server(url))
    }
    const onData = (chunk: Buffer) => {
      seen += chunk
      const match = /listening (\d+)|Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(seen)
      if (match) ready(`http://127.0.0.1:${match[1] ?? match[2]}`)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (d) => (seen += d))
    child.once('exit', (code) => listening || reject(new Error(`${name} exited (${code}) before listening:\n${seen}`)))
    if (port) {
      const poll = async () => {
        if (listening || child.exitCode !== null) return
        const live = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false)
        if (live) ready(`http://127.0.0.1:${port}`)
        else setTimeout(poll, 100)
      }
      void poll()
    }
  })
}

export interface Load {
  requests: number
  reqPerSec: number
  p50: number
  p99: number
  errors: number
  non2xx: number
}

export async function load(options: autocannon.Options): Promise<Load> {
  const result = await autocannon({ connections: 20, duration: 5, ...options })
  return {
    requests: result.requests.total,
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux). Per request, it is a
 * steadier measure than req/s on a small machine, where the load generator and PostgreSQL share
 * the cores with the server; null elsewhere.
 */
export async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return null
  }
}
const CLOCK_TICKS_PER_SECOND = 100

/** CPU seconds used so far by each PostgreSQL process on this machine, by pid; null off Linux. */
export type PostgresCpu = Map<number, number> | null

/**
 * Every PostgreSQL process's CPU so far (backends, walwriter, autovacuum...): where PostgreSQL
 * runs beside the bench, the database's own share of a load. Taken before and after a load,
 * postgresCpuSecondsBetween says what it cost.
 */
export async function postgresCpu(): Promise<PostgresCpu> {
  try {
    const byPid = new Map<number, number>()
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      const comm = await fs.readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')
      if (comm.trim() !== 'postgres') continue
      const seconds = await cpuSeconds(Number(entry))
      if (seconds !== null) byPid.set(Number(entry), seconds)
    }
    return byPid
  } catch {
    return null
  }
}

/**
 * PostgreSQL's CPU between two readings: each process's growth, a process started in between
 * from zero. A backend that exited in between (a pool closing an idle connection) is left out
 * rather than counted as negative; what it spent in between is lost with it.
 */
export function postgresCpuSecondsBetween(before: PostgresCpu, after: PostgresCpu): number | null {
  if (!before || !after) return null
  let total = 0
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0)
  return total
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The code a result was measured on: its commit, and whether the working tree differed from it (results are not code). */
export function codeVersion(): { commit: string; modified: boolean } | null {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim()
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench', 'bin', 'migrations', 'scripts', ':!bench/results'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
    return { commit, modified: status.trim().length > 0 }
  } catch {
    return null
  }
}

export function machine() {
  return `${os.cpus().length} x ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`
}
