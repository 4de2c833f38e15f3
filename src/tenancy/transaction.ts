// A tenant's transaction, the whole of it in this file: on one pooled client, scoped to one
// tenant's schema, with its savepoints (TenantTransaction), what withTenantTx gives code outside a
// request (runInTenantTransaction), and a request's (RequestTransaction: opened on first need,
// ended once by the HTTP layer). The client goes back to the pool exactly once, and is destroyed
// rather than returned when its state is unknown (a failed COMMIT or ROLLBACK). The platform's own
// transactions are platform/db/platform-transaction.ts's.
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Writable } from 'node:stream'
import type pg from 'pg'
import { tracing, type SpanHandle } from '../platform/tracing.ts'
import { problems } from '../problems.ts'
import type { FairShare } from './fair-share.ts'
import { moduleQueryClient, type ModuleQueryClient, type StatementWatchdog } from './module-client.ts'
import { settleInOrder, type SchemaServer } from '../platform/db/scripts.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'
import { acquireClient } from '../platform/db/platform-transaction.ts'
import type { Tenant } from './registry.ts'

export type TenantDb = NodePgDatabase<Record<string, never>> & { $client: ModuleQueryClient }

/** Told how long transactions waited for a client and how they ended (transaction-metrics.ts). */
export interface TransactionObserver {
  /** A transaction of `tenantId`'s got its client after waiting `seconds` (its share, then the pool). */
  acquired(seconds: number, tenantId: string): void
  finished(outcome: 'committed' | 'rolled_back'): void
}

/**
 * Where a tenant transaction's connection comes from.
 * - 'login': a connection that logged in as the tenant's own role (tenant-connections.ts). The
 *   role cannot be changed from SQL: this is the tenant boundary.
 * - 'shared': a connection of the platform's login, switched to the tenant's role for the
 *   transaction (SET LOCAL ROLE). Statements that change the role back are refused by the module
 *   client's guard, which is a guard against mistakes, not a boundary: the embedded database, and
 *   PLINTH_TENANT_CONNECTIONS=shared (docs/security.md).
 */
export interface TenantClientSource {
  mode: 'login' | 'shared'
  acquire(tenant: TenantScope): Promise<pg.PoolClient>
  /** Cancels what a connection is running now; the statement watchdog's last resort (login mode). */
  cancel?(client: pg.PoolClient): Promise<void>
  /** Whether the backend `pid` is waiting for a lock now (asked on the platform's connection). */
  waitingForLock?(pid: number): Promise<boolean>
}

/** How a tenant transaction opens: its connections, each tenant's share of them, and per-statement bounds. */
export interface TenantPool {
  /** The platform's pool: never lent to module code in 'login' mode. */
  pool: pg.Pool
  clients: TenantClientSource
  /** Each tenant's bound on clients; none with DB_TENANT_POOL_MAX=0. */
  share: FairShare | null
  observer?: TransactionObserver
  /** 0: no bound. Sent with BEGIN (SET LOCAL), so they cost no round trip; enforced by a watchdog in 'login' mode. */
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

/** The platform pool lent as it is, each transaction switched to its tenant's role. */
export function sharedClients(pool: pg.Pool): TenantClientSource {
  return { mode: 'shared', acquire: () => acquireClient(pool) }
}

// A pooled client serves request after request: build its Drizzle instance once, not per request.
const moduleClientByClient = new WeakMap<pg.PoolClient, { db: TenantDb; client: ModuleQueryClient }>()
function moduleClientFor(client: pg.PoolClient, tp: TenantPool, begun: Promise<unknown>) {
  let entry = moduleClientByClient.get(client)
  // Stryker disable next-line ConditionalExpression: equivalent; without the cache the same Drizzle instance is built again
  if (!entry) {
    const guarded = moduleQueryClient(client)
    entry = { client: guarded, db: drizzle(guarded as unknown as pg.PoolClient) as unknown as TenantDb }
    moduleClientByClient.set(client, entry)
  }
  // The bounds are this transaction's: the same connection serves module migrations (unbounded) too.
  entry.client.watchdog = watchdogFor(client, tp, begun)
  return entry
}

/**
 * In 'login' mode every module statement is bounded whatever the statement itself set: a
 * statement still running a moment past the statement timeout, or still waiting for a lock a
 * moment past the lock timeout, is cancelled by the host. PostgreSQL's own timeouts (set with
 * BEGIN) answer first when the module has left them alone.
 */
function watchdogFor(client: pg.PoolClient, tp: TenantPool, begun: Promise<unknown>): StatementWatchdog | undefined {
  const { cancel, waitingForLock } = tp.clients
  if (tp.clients.mode !== 'login' || !cancel) return undefined
  return {
    statementTimeoutMs: tp.statementTimeoutMs > 0 ? tp.statementTimeoutMs + WATCHDOG_GRACE_MS : 0,
    lockTimeoutMs: tp.lockTimeoutMs > 0 && waitingForLock ? tp.lockTimeoutMs + WATCHDOG_GRACE_MS : 0,
    cancel: () => cancel(client),
    waitingForLock: async () => {
      const pid = backendPid(await begun)
      return pid !== undefined && waitingForLock ? waitingForLock(pid) : false
    },
  }
}

/** The backend's pid from BEGIN's settings row (pg gives a multi-statement query's results as an array). */
function backendPid(results: unknown): number | undefined {
  for (const result of [results].flat(2) as { rows?: { pid?: number }[] }[]) {
    const pid = result?.rows?.[0]?.pid
    if (typeof pid === 'number') return pid
  }
  return undefined
}

/** How long past a timeout the watchdog waits for PostgreSQL's own to answer. */
const WATCHDOG_GRACE_MS = 250

/**
 * What a tenant transaction leaves behind on its connection is undone as it ends, after COMMIT or
 * ROLLBACK, in the same round trip: cursors held past commit, session settings (a session-level
 * SET, default_transaction_read_only...), LISTEN, temporary objects, session advisory locks
 * (public.sys_reset_session, migration public/006: one statement). A connection goes back to the
 * pool only once this succeeded. (Statements a module prepared by name are deallocated by name:
 * moduleQueryClient keeps their names.)
 */
const SESSION_CLEANUP = 'SELECT public.sys_reset_session()'
const ENDINGS = { COMMIT: `COMMIT; ${SESSION_CLEANUP}`, ROLLBACK: `ROLLBACK; ${SESSION_CLEANUP}` }

// BEGIN and every transaction-local setting, built once per tenant and settings: one message on
// PostgreSQL; on Citus BEGIN goes as a query of its own, ahead of the settings (scripts.ts says
// why), still in the same round trip. Built split, so no request pays for splitting it. pg_temp
// goes last in the search_path: searched first (its default) a temporary table would shadow the
// tenant's own.
// Cached per pool and tenant: a module migration's transactions (no timeouts) and a request's
// may be for the same tenant.
const beginByPool = new WeakMap<TenantPool, WeakMap<TenantScope, string[]>>()
function beginQueries(tenant: TenantScope, tp: TenantPool): string[] {
  let beginByTenant = beginByPool.get(tp)
  if (!beginByTenant) beginByPool.set(tp, (beginByTenant = new WeakMap()))
  let queries = beginByTenant.get(tenant)
  // Stryker disable next-line ConditionalExpression: equivalent; without the cache the same statement is built again
  if (!queries) {
    const settings = [
      // Fail (3F000, 42704) when the tenant's schema or role is gone: see isTenantGone.
      `'${quoteIdent(tenant.schema)}'::regnamespace`,
      `'${quoteIdent(tenant.role)}'::regrole`,
      // Names plinth makes (t_<code>: a-z, 0-9, _) need no quotes, and read back as SET would leave them.
      `set_config('search_path', '${quoteIdent(tenant.schema).slice(1, -1)}, public, pg_temp', true)`,
      `set_config('statement_timeout', '${tp.statementTimeoutMs}', true)`,
      `set_config('lock_timeout', '${tp.lockTimeoutMs}', true)`,
      // For the watchdog's look at pg_locks: the backend serving this transaction, PgBouncer or not.
      'pg_backend_pid() AS pid',
    ]
    if (tp.clients.mode === 'shared') settings.unshift(`set_config('role', '${quoteIdent(tenant.role).slice(1, -1)}', true)`)
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
  if (isTenantGone(err)) return problems.tenantNotFound()
  return problems.dbUnavailable(err)
}

/**
 * The tenant was dropped while this request was on its way (by another instance, whose change has
 * not reached this one): BEGIN's settings name its schema and role, and fail when either is gone
 * (3F000, 42704; set_config('role') in 'shared' mode, 22023). A connection logged in as a dropped
 * role stays open, so the names are checked on every BEGIN, not only at login.
 */
function isTenantGone(err: unknown): boolean {
  const code = (err as { code?: string })?.code
  return code === '3F000' || code === '42704' || code === '22023'
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
    private readonly moduleClient: ModuleQueryClient,
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
    /** Tracing on: one span from BEGIN to COMMIT or ROLLBACK, in place of a span for each. */
    private readonly span: SpanHandle | undefined,
  ) {}

  /** Takes one of the tenant's share of clients, then sends BEGIN and its settings ahead of the work. */
  static async begin(tp: TenantPool, tenant: TenantScope): Promise<TenantTransaction> {
    const started = tp.observer ? performance.now() : 0
    const share = tp.share
    await share?.enter(tenant.id)
    const leaveShare = share ? () => share.leave(tenant.id) : () => {}
    let client: pg.PoolClient
    try {
      client = await tp.clients.acquire(tenant)
    } catch (err) {
      leaveShare()
      throw err
    }
    tp.observer?.acquired((performance.now() - started) / 1000, tenant.id)
    const span = tracing?.start('tenant transaction', { 'db.system.name': 'postgresql', 'db.namespace': tenant.schema, 'plinth.tenant.id': tenant.id })
    tracing?.nameClient(client, tenant.schema)
    const begun = quietly(() => sendCorked(client, beginQueries(tenant, tp)))
    begun.catch(() => {}) // settled by commit() or rollback(); never an unhandled rejection
    const moduleClient = moduleClientFor(client, tp, begun)
    return new TenantTransaction(client, moduleClient.client, moduleClient.db, begun, leaveShare, tp.observer, span)
  }

  /** The problem to answer when BEGIN or its settings failed; undefined when they succeeded. */
  async beginFailure(): Promise<unknown> {
    return this.begun.then(
      () => undefined,
      (err) => beginFailed(err),
    )
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
      quietly(() => this.client.query(`${release}SAVEPOINT ${name}`)).catch(() => {})
      let result: T
      try {
        result = await insideSavepoint.run({ tx: this, children: new SavepointQueue() }, () => work(this.db))
      } catch (err) {
        // Undoes any savepoint nested in this one too. Awaited: whatever the caller does next
        // must run after its part is undone.
        this.unreleased = undefined
        await quietly(() => this.client.query(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`)).catch(() => {})
        throw err
      }
      this.unreleased = name
      return result
    })
  }

  /**
   * Sends one statement into the transaction without waiting for it, as SAVEPOINT is sent: it rides
   * with the next statement or the COMMIT. If it fails, the transaction is aborted and COMMIT
   * reports it (AbortedTransactionError), so its effect lands with the transaction or not at all.
   */
  send(text: string, values: unknown[]) {
    if (this.finished) throw new Error('the transaction has already ended')
    this.client.query(text, values).catch(() => {})
  }

  /** Throws when the database refuses BEGIN or COMMIT; the client is released either way. */
  async commit() {
    // Stryker disable next-line ConditionalExpression: equivalent; every caller checks `finished` first (onSend) or holds a fresh transaction
    if (this.finished) return
    this.state = 'committed'
    const committed = quietly(() => this.client.query(this.ending('COMMIT')))
    let result: pg.QueryResult
    try {
      await this.begun.catch((err) => {
        throw beginFailed(err)
      })
      result = (await committed) as unknown as pg.QueryResult
    } catch (err) {
      // The clean-up behind a COMMIT that failed did not run: the connection is closed, not reused.
      await committed.catch(() => {})
      this.span?.fail(err)
      this.release(err as Error, 'rolled back')
      this.observer?.finished('rolled_back')
      throw err
    }
    // A statement failed and the handler went on: PostgreSQL answered the COMMIT with ROLLBACK.
    const aborted = firstResult(result).command === 'ROLLBACK'
    this.release(undefined, aborted ? 'rolled back' : 'committed')
    this.observer?.finished(aborted ? 'rolled_back' : 'committed')
    if (aborted) throw new AbortedTransactionError()
  }

  /** Never throws: a client that cannot roll back is destroyed instead of returned. */
  async rollback() {
    if (this.finished) return
    this.state = 'rolled back'
    this.observer?.finished('rolled_back')
    const rolledBack = quietly(() => this.client.query(this.ending('ROLLBACK')))
    // A connection whose tenant is gone (its role dropped under it) serves no one again.
    const gone = await this.begun.then(
      () => undefined,
      (err) => (isTenantGone(err) ? (err as Error) : undefined),
    )
    try {
      await rolledBack
    } catch (err) {
      this.release(err as Error, 'rolled back')
      return
    }
    this.release(gone, 'rolled back')
  }

  /**
   * COMMIT or ROLLBACK with the session clean-up behind it, in one query: one message, so nothing
   * of another connection's can come between them where connections share one backend's queue
   * (the embedded database's socket), and one result to wait for.
   */
  private ending(command: 'COMMIT' | 'ROLLBACK'): string {
    const named = this.moduleClient.deallocateNamed()
    return `${ENDINGS[command]}${named}`
  }

  /** Gives the client back; broken (closed) when the transaction's end failed. */
  private release(err: Error | undefined, outcome: 'committed' | 'rolled back') {
    if (this.span) {
      this.span.setAttributes({ 'plinth.transaction.outcome': outcome })
      this.span.end()
      tracing!.nameClient(this.client, null)
    }
    this.client.release(err)
    this.leaveShare()
  }
}

/** Statements that belong to the transaction's own span (BEGIN, SAVEPOINT, COMMIT), not one each. */
function quietly<T>(send: () => T): T {
  return tracing ? tracing.untraced(send) : send()
}

/** The first statement's result of a query that sent several (pg answers those with an array). */
function firstResult(result: pg.QueryResult | pg.QueryResult[]): pg.QueryResult {
  return Array.isArray(result) ? result[0] : result
}

/** The transaction runInTenantTransaction runs the code now running in (a job, withTenantTx outside a request). */
export const currentTransaction = new AsyncLocalStorage<TenantTransaction>()

/** Runs `work` in a tenant transaction: COMMIT when it resolves, ROLLBACK when it throws. */
export async function runInTenantTransaction<T>(tp: TenantPool, tenant: TenantScope, work: (db: TenantDb) => Promise<T>): Promise<T> {
  const tx = await TenantTransaction.begin(tp, tenant)
  try {
    const result = await currentTransaction.run(tx, () => work(tx.db))
    await tx.commit()
    return result
  } finally {
    await tx.rollback()
  }
}

const REQ_DB_NOT_OPEN =
  "req.db is not open here: a route's guards run before the request takes a database connection. Use req.db in the route's handler, or ctx.withTenantTx(req.tenant.id, db => ...) in a guard"

/** `req.db` (a getter on every request): the request's open transaction, and a clear error anywhere else. */
export function requestDb(this: { transaction: RequestTransaction | null }): TenantDb {
  if (this.transaction) return this.transaction.db
  throw new Error(REQ_DB_NOT_OPEN)
}

/**
 * A tenant request's transaction: the whole of its state, in one object. The HTTP layer makes one
 * for each tenant request and ends it as the response leaves (http/tenant-request.ts); the Express
 * chain, req.db and withTenantTx ask it for the transaction (open() opens it on first need, once),
 * and none of them ends it.
 */
export class RequestTransaction {
  private opening: Promise<TenantTransaction> | undefined
  private tx: TenantTransaction | undefined
  /** The response is out (or its caller gone): nothing may open the transaction now. */
  private over = false

  constructor(
    private readonly tenantPool: TenantPool,
    readonly tenant: Tenant,
  ) {}

  /** The transaction, opened on the first call within the tenant's fair share; the same one after. */
  open(): Promise<TenantTransaction> {
    if (this.opening) return this.opening
    // Nothing would ever commit or roll back a transaction opened after the response went out.
    if (this.over) return Promise.reject(new Error("the response was already sent; the request's transaction cannot open now"))
    this.opening = TenantTransaction.begin(this.tenantPool, this.tenant).then((tx) => (this.tx = tx))
    return this.opening
  }

  /** Whether anything has opened it (it may be opening still, or over). */
  get opened(): boolean {
    return this.opening !== undefined
  }

  /** `req.db`: Drizzle on the open transaction, and a clear error before it opens or after it ends. */
  get db(): TenantDb {
    if (this.tx && !this.tx.finished) return this.tx.db
    throw new Error(
      this.tx
        ? "req.db was used after the request's transaction ended (its response was sent); send the response last"
        : REQ_DB_NOT_OPEN,
    )
  }

  /**
   * Ends it as the response leaves: COMMIT when `keep`, else ROLLBACK. Throws when COMMIT fails
   * (the response must not then say it succeeded).
   */
  async finish(keep: boolean) {
    this.over = true
    const tx = await this.settled()
    if (!tx || tx.finished) return
    if (keep) await tx.commit()
    else await tx.rollback()
  }

  /** The response went out without passing finish (the caller left, the reply was hijacked), or the handler threw: ROLLBACK. */
  async abandon(options: { over: boolean }) {
    if (options.over) this.over = true
    await (await this.settled())?.rollback()
  }

  /** Why BEGIN or its settings failed, when they did (the tenant dropped a moment ago). */
  async beginFailure(): Promise<unknown> {
    return (await this.settled())?.beginFailure()
  }

  /** The transaction once it has opened; undefined if it never was, or failed to. */
  private async settled(): Promise<TenantTransaction | undefined> {
    if (this.tx || !this.opening) return this.tx
    return this.opening.catch(() => undefined)
  }
}
