// Connections that logged in as a tenant's own role: what tenant work runs on (requests,
// withTenantTx, module migrations). A role is fixed when a connection authenticates, and a tenant's
// role is a member of nothing, so no statement on such a connection (RESET ROLE, SET SESSION
// AUTHORIZATION, set_config, a DO block...) can make it anyone else.
//
// One pool for every tenant, bounded in total:
// - idle connections are kept per role and reused by the same tenant (most recent first);
// - under the cap, a tenant with no idle connection opens one;
// - at the cap, the least recently used idle connection of another tenant is closed to make room;
// - with none idle, callers wait in arrival order (bounded by the acquire timeout, then 503), and
//   a connection given back goes to the first of them: reused when it is of their role, else
//   closed and replaced by one of theirs.
// Each tenant's share (fair-share.ts) is taken before a connection is asked for, as before.
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parse as parseConnectionString } from 'pg-connection-string'
import pg from 'pg'
import { tracing } from '../platform/tracing.ts'
import { HttpProblem, problems } from '../problems.ts'
import type { TenantClientSource } from './transaction.ts'

/** A connection lent to one transaction; `release` gives it back once (an error closes it). */
export type TenantClient = pg.PoolClient

export interface TenantConnectionsOptions {
  /** The server's URL (DATABASE_URL): its host, port, database and TLS settings; not its user. */
  connectionString: string
  /** Connections open at once, over all tenants. */
  max: number
  /** How long a caller waits for a connection before 503 DB_UNAVAILABLE. */
  acquireTimeoutMs: number
  /** How long an idle connection is kept for its tenant. */
  idleTimeoutMs?: number
  password(role: string): Promise<string>
  /**
   * The server refused the role's login (no LOGIN, another password: a role made by an earlier
   * plinth, or a secret rotated). Makes the role able to log in again; the login is tried once more.
   */
  repairLogin(role: string): Promise<void>
  onIdleError?(err: Error): void
}

interface Waiter {
  role: string
  resolve(client: TenantClient): void
  reject(err: unknown): void
  timer: NodeJS.Timeout
}

interface Idle {
  role: string
  timer: NodeJS.Timeout
}

/** How long a cancel request waits for the server to close its connection. */
const CANCEL_TIMEOUT_MS = 5000

/**
 * A refused login: wrong password (28P01), not permitted to log in (28000), or PgBouncer's words
 * for either (08P01: "SASL authentication failed"; "no such user", as its auth_query finds no
 * role that may log in).
 */
function loginRefused(err: unknown): boolean {
  const { code, message } = err as { code?: string; message?: string }
  return code === '28P01' || code === '28000' || (code === '08P01' && /authentication failed|no such user/i.test(message ?? ''))
}

/**
 * PgBouncer's answer to a login it could not look up just then ("bouncer config error": its
 * auth_query found no answer yet for a role made a moment before, seen now and then in CI's
 * PgBouncer pass). Tried again, after a pause, a few times.
 */
function bouncerNotReady(err: unknown): boolean {
  return /bouncer config error/i.test((err as { message?: string })?.message ?? '')
}
const BOUNCER_RETRIES = 3
const BOUNCER_PAUSE_MS = 100

export class TenantConnections {
  private readonly target: pg.ClientConfig
  private open = 0
  /** Idle connections by role, most recently returned last. */
  private readonly idleByRole = new Map<string, TenantClient[]>()
  /** Every idle connection, least recently returned first: whom to close when room is needed. */
  private readonly idle = new Map<TenantClient, Idle>()
  private readonly waiters: Waiter[] = []
  private ending = false

  constructor(private readonly options: TenantConnectionsOptions) {
    const parsed = parseConnectionString(options.connectionString)
    this.target = {
      host: parsed.host ?? undefined,
      port: parsed.port ? Number(parsed.port) : undefined,
      database: parsed.database ?? undefined,
      ssl: parsed.ssl as pg.ClientConfig['ssl'],
      // The platform's connections say 'plinth' too: pg_stat_activity's usename tells a tenant's apart.
      application_name: 'plinth',
      connectionTimeoutMillis: options.acquireTimeoutMs,
      // Statements issued without waiting share a round trip (the request's BEGIN rides with its
      // first statement: transaction.ts).
      pipeline: true,
    } as pg.ClientConfig
  }

  /** Connections open now, idle or lent. */
  get totalCount() {
    return this.open
  }

  get idleCount() {
    return this.idle.size
  }

  get waitingCount() {
    return this.waiters.length
  }

  /** A connection logged in as `role`: an idle one of its own, a new one, or the next to come free. */
  async acquire(role: string): Promise<TenantClient> {
    if (this.ending) throw problems.dbUnavailable(new Error('the host is shutting down'))
    const own = this.takeIdle(role)
    if (own) return own
    if (this.open < this.options.max) return this.openFor(role)
    const oldest = this.idle.keys().next()
    if (!oldest.done) {
      this.closeIdle(oldest.value)
      return this.openFor(role)
    }
    return new Promise<TenantClient>((resolve, reject) => {
      const waiter: Waiter = {
        role,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1)
          reject(problems.dbUnavailable(new Error(`no tenant connection came free in ${this.options.acquireTimeoutMs} ms`)))
        }, this.options.acquireTimeoutMs),
      }
      this.waiters.push(waiter)
    })
  }

  /** Ends idle connections now and the lent ones as they come back. */
  async end() {
    this.ending = true
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(problems.dbUnavailable(new Error('the host is shutting down')))
    }
    await Promise.all([...this.idle.keys()].map((client) => this.closeIdle(client)))
  }

  /**
   * Asks the server to cancel what `client` is running now (the protocol's CancelRequest), on a
   * connection of its own. As libpq does, the request is written and the connection left open
   * until the server closes it, which says the request was handled: closing first makes
   * PgBouncer 1.18 drop its half-forwarded cancel, and exit.
   */
  cancel(client: TenantClient): Promise<void> {
    const { processID, secretKey } = client as unknown as { processID: number | null; secretKey: number | null }
    if (processID == null || secretKey == null) return Promise.resolve()
    const host = this.target.host ?? 'localhost'
    const port = this.target.port ?? 5432
    return new Promise((resolve) => {
      const socket = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host)
      const request = Buffer.alloc(16)
      request.writeInt32BE(16, 0)
      request.writeInt32BE(80877102, 4)
      request.writeInt32BE(processID, 8)
      request.writeInt32BE(secretKey, 12)
      socket.setTimeout(CANCEL_TIMEOUT_MS, () => socket.destroy())
      socket.once('connect', () => socket.write(request))
      socket.on('data', () => {}) // nothing is expected back; the end is the answer
      socket.once('close', () => resolve())
      socket.once('error', () => resolve())
    })
  }

  private takeIdle(role: string): TenantClient | undefined {
    const client = this.idleByRole.get(role)?.pop()
    if (!client) return undefined
    this.forgetIdle(client)
    this.lend(client, role)
    return client
  }

  private forgetIdle(client: TenantClient) {
    const entry = this.idle.get(client)
    if (!entry) return
    clearTimeout(entry.timer)
    this.idle.delete(client)
    const list = this.idleByRole.get(entry.role)
    if (list) {
      const at = list.indexOf(client)
      if (at !== -1) list.splice(at, 1)
      if (list.length === 0) this.idleByRole.delete(entry.role)
    }
  }

  private closeIdle(client: TenantClient): Promise<void> {
    this.forgetIdle(client)
    this.open--
    return client.end().catch(() => {})
  }

  /** Opens a connection as `role` in a slot of its own, counted before the login starts. */
  private async openFor(role: string): Promise<TenantClient> {
    this.open++
    try {
      return await this.login(role, true)
    } catch (err) {
      this.open--
      this.dispatch()
      throw err instanceof HttpProblem ? err : problems.dbUnavailable(err)
    }
  }

  private async login(role: string, mayRepair: boolean, retries = BOUNCER_RETRIES): Promise<TenantClient> {
    const client = new (tracing?.pgClient ?? pg.Client)({ ...this.target, user: role, password: () => this.options.password(role) }) as TenantClient
    // An error on a lent connection also rejects its queries, which its holder handles; on an
    // idle one, nobody is listening: it is dropped from the pool.
    client.on('error', (err) => {
      if (!this.idle.has(client)) return
      void this.closeIdle(client)
      this.options.onIdleError?.(err)
      this.dispatch()
    })
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      if (bouncerNotReady(err) && retries > 0) {
        await sleep(BOUNCER_PAUSE_MS * (BOUNCER_RETRIES - retries + 1))
        return this.login(role, mayRepair, retries - 1)
      }
      if (!mayRepair || !loginRefused(err)) throw err
      await this.options.repairLogin(role)
      return this.login(role, false)
    }
    this.lend(client, role)
    return client
  }

  private lend(client: TenantClient, role: string) {
    let returned = false
    client.release = (err?: Error | boolean) => {
      if (returned) return
      returned = true
      this.giveBack(client, role, Boolean(err))
    }
  }

  private giveBack(client: TenantClient, role: string, broken: boolean) {
    if (broken || this.ending) {
      this.open--
      client.end().catch(() => {})
      this.dispatch()
      return
    }
    const waiter = this.waiters.shift()
    if (waiter) {
      clearTimeout(waiter.timer)
      if (waiter.role === role) {
        this.lend(client, role)
        waiter.resolve(client)
      } else {
        // Its slot goes to the waiter, logged in as the waiter's role.
        this.open--
        client.end().catch(() => {})
        this.openFor(waiter.role).then(waiter.resolve, waiter.reject)
      }
      return
    }
    const timer = setTimeout(() => this.closeIdle(client), this.options.idleTimeoutMs ?? 30_000)
    timer.unref()
    this.idle.set(client, { role, timer })
    const list = this.idleByRole.get(role)
    if (list) list.push(client)
    else this.idleByRole.set(role, [client])
  }

  /** A slot came free: the first waiter, if any, opens a connection in it. */
  private dispatch() {
    if (this.open >= this.options.max) return
    const waiter = this.waiters.shift()
    if (!waiter) return
    clearTimeout(waiter.timer)
    this.openFor(waiter.role).then(waiter.resolve, waiter.reject)
  }
}

/** Tenant transactions on connections logged in as each tenant (transaction.ts's 'login' mode). */
export function loginClients(connections: TenantConnections, platform: pg.Pool): TenantClientSource {
  return {
    mode: 'login',
    acquire: (tenant) => connections.acquire(tenant.role),
    cancel: (client) => connections.cancel(client),
    waitingForLock: async (pid) => {
      // The backend's own pid, read in the transaction's BEGIN: behind PgBouncer the connection's
      // processID is PgBouncer's, not the backend's.
      const { rows } = await platform.query<{ waiting: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE pid = $1 AND NOT granted) AS waiting',
        [pid],
      )
      return rows[0].waiting
    },
  }
}
