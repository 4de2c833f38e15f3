// The pg Pool every part of plinth talks through, on a PostgreSQL server (DATABASE_URL) or on the
// embedded one: PGlite persisted in a data folder, served on a unix socket by pglite-socket, so the
// code above the pool is the same in both modes and psql can reach the embedded database too.
//
// Only one process may open a PGlite data folder. The first process to claim `<dataDir>.run/owner.pid`
// opens it and serves the socket; any other (the CLI while the host runs, a second host) finds the
// owner alive and connects to its socket as a guest.
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import pg from 'pg'
import { tracing } from '../tracing.ts'
import type { Logger } from 'pino'

export interface Database {
  pool: pg.Pool
  kind: 'postgres' | 'embedded'
  /** Where the data lives, safe to log (no password). */
  location: string
  /** A connection string other processes (the CLI, psql) can use; may hold a password. */
  connectionString: string
  /** Citus's version when the database is a Citus coordinator (docs/scale-out.md), else null. */
  citus: string | null
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string
  dataDir: string
  poolMax: number
  acquireTimeoutMs: number
  log: Logger
}

const SOCKET_PORT = 5432

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openServerDatabase(options, options.databaseUrl) : openEmbeddedDatabase(options)
}

function createPool(config: pg.PoolConfig, options: DatabaseOptions): pg.Pool {
  const pool = new pg.Pool({
    ...config,
    // Bounds the wait for a free client as well as for a new connection: past it, 503.
    connectionTimeoutMillis: options.acquireTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'plinth',
    // Tracing on: a span per statement (platform/otel/pg-client.ts).
    ...(tracing ? { Client: tracing.pgClient } : {}),
    // Statements issued without waiting share a round trip; a tenant transaction's BEGIN travels
    // with its first statement (transaction.ts). Results still come back in order, one per query.
    pipeline: true,
  })
  // An idle client losing its connection must not take the process down; the pool replaces it.
  pool.on('error', (err) => options.log.warn({ err: { message: err.message, code: (err as any).code } }, 'idle database client failed'))
  // Nor may a checked-out one: pg emits 'error' on the client as well as rejecting its queries,
  // and an 'error' event nobody listens to is thrown. The rejected queries carry the error to
  // whoever holds the client, and that holder releases it as broken.
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

export function safeLocation(databaseUrl: string): string {
  const url = new URL(databaseUrl)
  return `postgres://${url.hostname}${url.port ? ':' + url.port : ''}${url.pathname}`
}

async function openServerDatabase(options: DatabaseOptions, databaseUrl: string): Promise<Database> {
  const pool = createPool({ connectionString: databaseUrl, max: options.poolMax }, options)
  let citus: string | null
  try {
    citus = await citusVersion(pool)
  } catch (err) {
    await pool.end()
    throw err
  }
  return {
    pool,
    kind: 'postgres',
    location: safeLocation(databaseUrl),
    connectionString: databaseUrl,
    citus,
    close: () => pool.end(),
  }
}

/** Citus's version if its extension is in the database; its tenant schemas then live on its workers. */
async function citusVersion(pool: pg.Pool): Promise<string | null> {
  const { rows } = await pool.query<{ extversion: string }>(`SELECT extversion FROM pg_extension WHERE extname = 'citus'`)
  return rows[0]?.extversion ?? null
}

export function embeddedRunDir(dataDir: string) {
  return `${dataDir}.run`
}

async function openEmbeddedDatabase(options: DatabaseOptions): Promise<Database> {
  const runDir = embeddedRunDir(options.dataDir)
  await fs.mkdir(runDir, { recursive: true })
  const socketPath = path.join(runDir, `.s.PGSQL.${SOCKET_PORT}`)
  const pidFile = path.join(runDir, 'owner.pid')
  const connectionString = `postgres://postgres@localhost/postgres?host=${encodeURIComponent(runDir)}&port=${SOCKET_PORT}`

  for (;;) {
    if (await claimOwnership(pidFile)) break
    const owner = Number(await fs.readFile(pidFile, 'utf8').catch(() => ''))
    if (owner && isAlive(owner)) {
      await waitForSocket(socketPath, 30_000)
      // A single connection: pglite-socket runs one transaction at a time, and waiting in the
      // pool is bounded by DB_ACQUIRE_TIMEOUT_MS where waiting in the socket queue is not.
      const pool = createPool({ host: runDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres', max: 1 }, options)
      return { pool, kind: 'embedded', location: `${options.dataDir} (via ${owner})`, connectionString, citus: null, close: () => pool.end() }
    }
    // The owner died without cleaning up: take its place.
    await fs.rm(pidFile, { force: true })
  }

  try {
    await fs.mkdir(path.dirname(options.dataDir), { recursive: true })
    await fs.rm(socketPath, { force: true })
    // Loaded only in embedded mode: a host on PostgreSQL never pays for PGlite's code.
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const pglite = await PGlite.create(options.dataDir)
    const server = new PGLiteSocketServer({ db: pglite, path: socketPath, maxConnections: 16 })
    await server.start()
    const pool = createPool({ host: runDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres', max: 1 }, options)
    let closed: Promise<void> | undefined
    return {
      pool,
      kind: 'embedded',
      location: options.dataDir,
      connectionString,
      citus: null,
      close: () =>
        (closed ??= (async () => {
          await pool.end()
          await server.stop()
          await pglite.close()
          await fs.rm(socketPath, { force: true })
          await fs.rm(pidFile, { force: true })
        })()),
    }
  } catch (err) {
    await fs.rm(pidFile, { force: true })
    throw err
  }
}

async function claimOwnership(pidFile: string): Promise<boolean> {
  try {
    await fs.writeFile(pidFile, String(process.pid), { flag: 'wx' })
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST') return false
    throw err
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

async function waitForSocket(socketPath: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(socketPath)
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`the embedded database at ${socketPath} did not answer`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
