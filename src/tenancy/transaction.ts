// A transaction on one pooled client, scoped to one tenant's schema: what a request runs in, and
// what withTenantTx gives code outside a request. The client goes back to the pool exactly once,
// and is destroyed rather than returned when its state is unknown (a failed COMMIT or ROLLBACK).
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Writable } from 'node:stream'
import type pg from 'pg'
import { problems } from '../problems.ts'
import type { FairShare } from './fair-share.ts'
import { moduleQueryClient, type ModuleQueryClient } from './module-client.ts'
import { settleInOrder, type SchemaServer } from './scripts.ts'
import { quoteIdent } from './schema-name.ts'

export type TenantDb = NodePgDatabase<Record<string, never>> & { $client: ModuleQueryClient }

/** Told how long transactions waited for a client and how they ended (the host's metrics). */
export interface TransactionObserver {
  acquired(seconds: number): void
  finished(outcome: 'committed' | 'rolled_back'): void
}

/** How a tenant transaction opens: the pool, each tenant's share of it, and per-statement bounds. */
export interface TenantPool {
  pool: pg.Pool
  /** Each tenant's bound on clients; none with DB_TENANT_POOL_MAX=0. */
  share: FairShare | null
  observer?: TransactionObserver
  /** 0: no bound. Sent with BEGIN (SET LOCAL), so they cost no round trip. */
  statementTimeoutMs: number
  lockTimeoutMs: number
  /** On Citus, BEGIN goes apart from the settings (scripts.ts says why), still in the same round trip. */
  server: SchemaServer
}

/** The tenant a transaction is for: where it runs, and as whom. */
export interface TenantScope {
  id: string
  schema: string
  role: string
}

/** Takes a client, bounded by the pool's connectionTimeoutMillis; a 503 when none frees up. */
export async function acquireClient(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect()
  } catch (err) {
    throw problems.dbUnavailable(err)
  }
}

// A pooled client serves request after request: build its Drizzle instance once, not per request.
const drizzleByClient = new WeakMap<pg.PoolClient, TenantDb>()
function drizzleFor(client: pg.PoolClient): TenantDb {
  let db = drizzleByClient.get(client)
  // Stryker disable next-line ConditionalExpression: equivalent; without the cache the same Drizzle instance is built again
  if (!db) drizzleByClient.set(client, (db = drizzle(moduleQueryClient(client) as unknown as pg.PoolClient) as unknown as TenantDb))
  return db
}

// BEGIN and every transaction-local setting, built once per tenant and settings: one message on
// PostgreSQL; on Citus BEGIN goes as a query of its own, ahead of the settings (scripts.ts says
// why), still in the same round trip. Built split, so no request pays for splitting it.
const beginByTenant = new WeakMap<TenantScope, string[]>()
function beginQueries(tenant: TenantScope, tp: TenantPool): string[] {
  let queries = beginByTenant.get(tenant)
  // Stryker disable next-line ConditionalExpression: equivalent; without the cache the same statement is built again
  if (!queries) {
    const settings = [
      `set_config('role', '${quoteIdent(tenant.role).slice(1, -1)}', true)`,
      // Names plinth makes (t_<code>: a-z, 0-9, _) need no quotes, and read back as SET would leave them.
      `set_config('search_path', '${quoteIdent(tenant.schema).slice(1, -1)}, public', true)`,
      `set_config('statement_timeout', '${tp.statementTimeoutMs}', true)`,
      `set_config('lock_timeout', '${tp.lockTimeoutMs}', true)`,
    ]
    const select = `SELECT ${settings.join(', ')}`
    beginByTenant.set(tenant, (queries = tp.server === 'citus' ? ['BEGIN', select] : [`BEGIN; ${select}`]))
  }
  return queries
}

/** The socket under a pg client (pg keeps it on its connection, unexported); undefined if it has none. */
export function clientSocket(client: pg.ClientBase): Writable | undefined {
  return (client as unknown as { connection?: { stream?: Writable } }).connection?.stream
}

/**
 * Sends BEGIN and its settings held in the socket until the promises running now have settled:
 * the handler's first statement, sent in that same run, leaves with them in one write instead of
 * one write (one system call, and often one packet) each. process.nextTick runs once the current
 * chain of promises is done, so nothing waits past it.
 */
function sendCorked(client: pg.PoolClient, queries: string[]): Promise<unknown> {
  const socket = clientSocket(client)
  socket?.cork()
  if (socket) process.nextTick(() => socket.uncork())
  return settleInOrder(...queries.map((query) => client.query(query)))
}

/** Why BEGIN or its settings failed, as the caller should hear it. */
function beginFailed(err: unknown) {
  const code = (err as { code?: string })?.code
  // The tenant's role is gone (set_config refuses it: 22023): it was dropped while this request
  // was on its way. (A missing schema fails nothing here: search_path may name one.)
  if (code === '22023') return problems.tenantNotFound()
  return problems.dbUnavailable(err)
}

/** COMMIT found the transaction aborted: nothing of it was written. */
export class AbortedTransactionError extends Error {
  constructor() {
    super('the transaction was aborted by a failed statement; COMMIT rolled it back')
  }
}

/** The savepoint (of which transaction) that the code running now is inside. */
const insideSavepoint = new AsyncLocalStorage<{ tx: TenantTransaction; children: SavepointQueue }>()

/** Savepoints at one level of nesting run one after another: two at once on one client would interleave. */
class SavepointQueue {
  private tail: Promise<unknown> | undefined
  run<T>(work: () => Promise<T>): Promise<T> {
    // Nothing queued (the usual case): start now, without a hop through the queue.
    const result = this.tail ? this.tail.then(work) : work()
    const settled: Promise<unknown> = result.then(
      () => undefined,
      () => undefined,
    )
    this.tail = settled
    // Stryker disable next-line BlockStatement,ConditionalExpression,EqualityOperator: equivalent; a tail left set only makes the next run hop one microtask
    settled.then(() => {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: as above
      if (this.tail === settled) this.tail = undefined
    })
    return result
  }
}

export class TenantTransaction {
  private state: 'open' | 'committed' | 'rolled back' = 'open'
  private savepoints = 0
  /** The savepoint whose work finished last, not yet released (see inSavepoint). */
  private unreleased: string | undefined
  private readonly topLevel = new SavepointQueue()

  private constructor(
    readonly client: pg.PoolClient,
    readonly db: TenantDb,
    // BEGIN and the settings, sent but not awaited: the pool's clients pipeline (database.ts), so
    // the handler's first statement travels right behind it instead of one round trip later. If
    // a setting fails (its role or schema was dropped), the transaction is aborted and every
    // statement behind it fails too; BEGIN itself fails only with its connection, and then so does
    // everything behind it. Either way nothing runs outside the transaction, as another role or on
    // another schema, and commit() reports the failure.
    private readonly begun: Promise<unknown>,
    /** Gives the tenant's share of the pool back: once, when the client goes back. */
    private readonly leaveShare: () => void,
    private readonly observer: TransactionObserver | undefined,
  ) {}

  /** Takes one of the tenant's share of clients, then sends BEGIN and its settings ahead of the work. */
  static async begin(tp: TenantPool, tenant: TenantScope): Promise<TenantTransaction> {
    const started = tp.observer ? performance.now() : 0
    const share = tp.share
    await share?.enter(tenant.id)
    const leaveShare = share ? () => share.leave(tenant.id) : () => {}
    let client: pg.PoolClient
    try {
      client = await acquireClient(tp.pool)
    } catch (err) {
      leaveShare()
      throw err
    }
    tp.observer?.acquired((performance.now() - started) / 1000)
    const begun = sendCorked(client, beginQueries(tenant, tp))
    begun.catch(() => {}) // settled by commit() or rollback(); never an unhandled rejection
    return new TenantTransaction(client, drizzleFor(client), begun, leaveShare, tp.observer)
  }

  /** The problem to answer when BEGIN or its settings failed; undefined when they succeeded. */
  async beginFailure(): Promise<unknown> {
    return this.begun.then(
      () => undefined,
      (err) => beginFailed(err),
    )
  }

  private release(err?: Error) {
    this.client.release(err)
    this.leaveShare()
  }

  get finished() {
    return this.state !== 'open'
  }

  /**
   * `work(db)` inside this transaction under a SAVEPOINT: if it throws, its part is rolled back
   * and the error rethrown; otherwise its part commits or rolls back with the transaction.
   *
   * SAVEPOINT is sent without waiting, like BEGIN: it rides with work's first statement, and if it
   * fails the transaction is aborted, which COMMIT reports. A savepoint whose work succeeded is not
   * released at once: its RELEASE travels with the next SAVEPOINT, and COMMIT releases the last
   * one. A request with one withTenantTx call costs one statement more than with req.db, and no
   * round trip more.
   */
  inSavepoint<T>(work: (db: TenantDb) => Promise<T>): Promise<T> {
    const parent = insideSavepoint.getStore()
    const queue = parent?.tx === this ? parent.children : this.topLevel
    return queue.run(async () => {
      if (this.finished) throw new Error('the transaction has already ended')
      const name = `plinth_savepoint_${++this.savepoints}`
      // Releasing the savepoint that finished last releases any still held inside it: the stack
      // of open subtransactions never grows past the nesting of the calls.
      const release = this.unreleased ? `RELEASE SAVEPOINT ${this.unreleased}; ` : ''
      this.unreleased = undefined
      this.client.query(`${release}SAVEPOINT ${name}`).catch(() => {})
      let result: T
      try {
        result = await insideSavepoint.run({ tx: this, children: new SavepointQueue() }, () => work(this.db))
      } catch (err) {
        // Undoes any savepoint nested in this one too. Awaited: whatever the caller does next
        // must run after its part is undone.
        this.unreleased = undefined
        await this.client.query(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`).catch(() => {})
        throw err
      }
      this.unreleased = name
      return result
    })
  }

  /** Throws when the database refuses BEGIN or COMMIT; the client is released either way. */
  async commit() {
    // Stryker disable next-line ConditionalExpression: equivalent; every caller checks `finished` first (onSend) or holds a fresh transaction
    if (this.finished) return
    this.state = 'committed'
    const committed = this.client.query('COMMIT')
    let result: pg.QueryResult
    try {
      await this.begun.catch((err) => {
        throw beginFailed(err)
      })
      result = await committed
    } catch (err) {
      await committed.catch(() => {})
      this.release(err as Error)
      this.observer?.finished('rolled_back')
      throw err
    }
    this.release()
    // A statement failed and the handler went on: PostgreSQL answered the COMMIT with ROLLBACK.
    const aborted = result.command === 'ROLLBACK'
    this.observer?.finished(aborted ? 'rolled_back' : 'committed')
    if (aborted) throw new AbortedTransactionError()
  }

  /** Never throws: a client that cannot roll back is destroyed instead of returned. */
  async rollback() {
    if (this.finished) return
    this.state = 'rolled back'
    this.observer?.finished('rolled_back')
    const rolledBack = this.client.query('ROLLBACK')
    await this.begun.catch(() => {})
    try {
      await rolledBack
    } catch (err) {
      this.release(err as Error)
      return
    }
    this.release()
  }
}

/** Runs `work` in a tenant transaction: COMMIT when it resolves, ROLLBACK when it throws. */
export async function runInTenantTransaction<T>(tp: TenantPool, tenant: TenantScope, work: (db: TenantDb) => Promise<T>): Promise<T> {
  const tx = await TenantTransaction.begin(tp, tenant)
  try {
    const result = await work(tx.db)
    await tx.commit()
    return result
  } finally {
    await tx.rollback()
  }
}

/**
 * The host's own work in a tenant's schema (its RBAC tables), as the login role: the tenant's role
 * has no privilege on them.
 */
export function inSchemaTransaction<T>(pool: pg.Pool, schema: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}, public`)
    return work(client)
  })
}

/** A plain transaction on `public` for platform writes (tenants, plugins, roles). */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await acquireClient(pool)
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    client.release()
    return result
  } catch (err) {
    try {
      await client.query('ROLLBACK')
      client.release()
    } catch (rollbackError) {
      client.release(rollbackError as Error)
    }
    throw err
  }
}
