// Cache invalidation across host instances. A writer records a change (topic + key) in
// public.sys_change inside its own transaction, so it is seen only if it commits; every instance
// reads the rows it has not seen yet and updates its caches.
//
// How a change reaches an instance, on every topology:
// - Polling, always: every PLINTH_CHANGE_POLL_MS (250 ms) on a connection of its own, through
//   DATABASE_URL (PgBouncer in any mode, or the embedded database's socket). This alone keeps the
//   bound: a change is applied everywhere within a poll interval (plus the read) of committing.
// - LISTEN, where it can be trusted: on DATABASE_LISTEN_URL when set, else on DATABASE_URL once a
//   probe NOTIFY sent from another connection arrives (it never does through PgBouncer in
//   transaction mode). A notification wakes the reader at once.
//
// Row ids are handed out at INSERT but become visible at COMMIT, so a lower id can appear after a
// higher one was read. Each row records its writer's transaction id, and every read also takes
// the rows of transactions that were still running at the previous read (xid >= that snapshot's
// xmin); rows already applied are skipped.
//
// The feed never stops silently: a read that fails is logged and retried, /health/ready reports a
// lag past the bound (1 s), and while reads fail past the bound tenant requests are refused (503)
// rather than served from caches that may be stale. The first read that succeeds catches up from
// where the last one left off before requests are served again.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { Logger } from 'pino'

export type ChangeTopic = 'tenant' | 'module' | 'rbac' | 'key'
/** What an instance older than public migration 007 records for a module change, in a fleet rolling over. */
const OLD_MODULE_TOPIC = 'plugin' as ChangeTopic
type Listener = (key: string) => void | Promise<void>

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>

/** Records a change; call it inside the transaction that makes the change. */
const LEGACY_CHANNEL = 'plinth_change'

async function changeChannel(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ value: string }>(`SELECT value FROM public.sys_setting WHERE name = 'change_channel'`)
  const channel = rows[0]?.value ?? LEGACY_CHANNEL
  if (!/^[a-z0-9_]{1,63}$/.test(channel)) throw new Error('public.sys_setting holds an invalid change_channel')
  return channel
}

export async function recordChange(db: Queryable, topic: ChangeTopic, key: string) {
  await db.query('INSERT INTO public.sys_change (topic, key) VALUES ($1, $2)', [topic, key])
}

/** How stale this instance's caches may be, for whoever serves from them. */
export interface CacheFreshness {
  /** True while the feed has been failing for longer than the bound: do not trust the caches. */
  refusing(): boolean
}

export interface ChangeFeedOptions {
  /** Where this instance reads sys_change: DATABASE_URL, or the embedded database's socket. */
  connectionString: string
  /** Where to LISTEN: a direct connection (DATABASE_LISTEN_URL), `try` to probe connectionString, or none. */
  listen: { url: string; trusted: boolean } | undefined
  pollMs: number
  /** How stale a cache may become before /health/ready says so and requests are refused. */
  boundMs: number
  log: Logger
}

/** A read that hangs (a connection gone silent) counts as failed after this long. */
const READ_TIMEOUT_MS = 5000
const PROBE_TIMEOUT_MS = 1000

export class ChangeFeed implements CacheFreshness {
  private listeners = new Map<ChangeTopic, Listener[]>()
  private lastId = 0n
  /** xmin of the snapshot taken before the last read: rows of transactions at or past it are read again. */
  private xmin = 0n
  /** Rows applied that a later read may return again, by id, with their writer's xid. */
  private applied = new Map<string, bigint>()
  private reader: pg.Client | undefined
  private listener: pg.Client | undefined
  private timer: NodeJS.Timeout | undefined
  private reading: Promise<void> | undefined
  private again = false
  private stopped = false
  /** When the last successful read began: everything committed before then is applied. */
  private syncedAt = Date.now()
  /** When reads began failing; undefined while they succeed. */
  private failingSince: number | undefined
  private lastError: string | undefined
  private warnedBehind = false
  mode: 'listen' | 'poll' | 'stopped' = 'stopped'

  constructor(private readonly options: ChangeFeedOptions) {}

  on(topic: ChangeTopic, listener: Listener) {
    this.listeners.set(topic, [...(this.listeners.get(topic) ?? []), listener])
  }

  /**
   * After a change committed: update this instance's caches now, so its very next request sees
   * the change. Never throws: the change is in public.sys_change, and the feed applies it again
   * when it reads it, on this instance as on every other.
   */
  async announce(topic: ChangeTopic, key: string) {
    await this.emitLocal(topic, key).catch(() => {})
  }

  /** Tells this instance's listeners now; resolves once they are done. */
  async emitLocal(topic: ChangeTopic, key: string) {
    await Promise.all((this.listeners.get(topic) ?? []).map((listener) => listener(key)))
  }

  async start() {
    this.stopped = false
    const reader = await this.connectReader()
    const { rows } = await reader.query<{ id: string | null; xmin: string }>(
      'SELECT (SELECT max(id) FROM public.sys_change)::text AS id, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin',
    )
    this.lastId = BigInt(rows[0].id ?? 0)
    this.xmin = BigInt(rows[0].xmin)
    this.syncedAt = Date.now()
    // Old rows are of no use to anyone: every instance reads from its own start onwards.
    await reader.query("DELETE FROM public.sys_change WHERE at < now() - interval '1 hour'")
    this.mode = 'poll'
    if (this.options.listen) await this.listen(this.options.listen).catch((err) => this.listenFailed(err))
    this.timer = setInterval(() => this.read(), this.options.pollMs)
    this.timer.unref()
    // Whatever changed between the reads above and now.
    this.read()
  }

  /** The feed's state for /health/ready and operators. */
  status() {
    const lagMs = Date.now() - this.syncedAt
    return { mode: this.mode, lagMs, behind: lagMs > this.options.boundMs, error: this.failingSince !== undefined ? this.lastError : undefined }
  }

  refusing(): boolean {
    return this.failingSince !== undefined && Date.now() - this.syncedAt > this.options.boundMs
  }

  private async connectReader(): Promise<pg.Client> {
    if (this.reader) return this.reader
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'plinth-changes', query_timeout: READ_TIMEOUT_MS })
    client.on('error', (err) => this.readFailed(err))
    await client.connect()
    this.reader = client
    return client
  }

  private dropReader() {
    const reader = this.reader
    this.reader = undefined
    reader?.end().catch(() => {})
  }

  /** The channel the feed LISTENs on: public.sys_setting's, which module code cannot read (migration public/006). */
  private channel = LEGACY_CHANNEL

  private async listen(where: { url: string; trusted: boolean }) {
    const client = new pg.Client({ connectionString: where.url, application_name: 'plinth-changes-listen' })
    client.on('error', (err) => {
      if (this.listener !== client) return
      this.listener = undefined
      client.end().catch(() => {})
      this.listenFailed(err)
    })
    await client.connect()
    this.channel = await changeChannel(client)
    await client.query(`LISTEN "${this.channel}"`)
    if (!where.trusted && !(await this.probe(client))) {
      await client.end().catch(() => {})
      this.options.log.info(
        { mode: 'poll', pollMs: this.options.pollMs },
        'change feed: LISTEN on DATABASE_URL is not delivered (PgBouncer in transaction mode?); polling instead. Set DATABASE_LISTEN_URL to a direct connection for instant changes',
      )
      return
    }
    client.on('notification', () => this.read())
    this.listener = client
    this.mode = 'listen'
  }

  /** Whether a NOTIFY sent on another connection reaches `client`. */
  private async probe(client: pg.Client): Promise<boolean> {
    const payload = `probe:${randomUUID()}`
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS)
      client.on('notification', function onProbe(message) {
        if (message.payload !== payload) return
        clearTimeout(timer)
        client.off('notification', onProbe)
        resolve(true)
      })
    })
    const reader = await this.connectReader()
    await reader.query('SELECT pg_notify($1, $2)', [this.channel, payload])
    return arrived
  }

  private listenFailed(err: Error) {
    this.mode = 'poll'
    if (this.stopped) return
    this.options.log.warn({ err: { message: err.message } }, 'change feed: LISTEN connection lost; polling meanwhile, reconnecting')
    setTimeout(() => {
      if (!this.stopped && !this.listener && this.options.listen) this.listen(this.options.listen).catch((e) => this.listenFailed(e))
    }, 1000).unref()
  }

  private readFailed(err: Error) {
    this.dropReader()
    if (this.stopped) return
    if (this.failingSince === undefined) {
      this.failingSince = Date.now()
      this.options.log.warn({ err: { message: err.message } }, 'change feed: could not read changes; retrying')
    }
    this.lastError = err.message
    if (!this.warnedBehind && Date.now() - this.syncedAt > this.options.boundMs) {
      this.warnedBehind = true
      this.options.log.error(
        { lagMs: Date.now() - this.syncedAt, boundMs: this.options.boundMs, reason: err.message },
        'change feed is behind: caches may be stale, so tenant requests answer 503 until it catches up',
      )
    }
  }

  /** Reads the rows not applied yet; concurrent wake-ups collapse into one more read. */
  private read() {
    if (this.stopped) return
    if (this.reading) {
      this.again = true
      return
    }
    this.reading = (async () => {
      do {
        this.again = false
        try {
          await this.readOnce()
        } catch (err) {
          this.readFailed(err as Error)
        }
      } while (this.again && !this.stopped)
    })().finally(() => (this.reading = undefined))
  }

  private async readOnce() {
    const startedAt = Date.now()
    const reader = await this.connectReader()
    // The snapshot first: a transaction still running now has an xid at or past its xmin, so its
    // rows are taken again next time even if the read below misses them.
    const snapshot = await reader.query<{ xmin: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin')
    const { rows } = await reader.query<{ id: string; topic: ChangeTopic; key: string; xid: string }>(
      'SELECT id::text, topic, key, xid::text FROM public.sys_change WHERE id > $1 OR xid >= $2::xid8 ORDER BY id',
      [this.lastId.toString(), this.xmin.toString()],
    )
    for (const row of rows) {
      if (this.applied.has(row.id)) continue
      await this.emitLocal(row.topic === OLD_MODULE_TOPIC ? 'module' : row.topic, row.key)
      // Recorded only once applied: a change that failed to apply is read again.
      this.applied.set(row.id, BigInt(row.xid))
      const id = BigInt(row.id)
      if (id > this.lastId) this.lastId = id
    }
    const xmin = BigInt(snapshot.rows[0].xmin)
    this.xmin = xmin
    for (const [id, xid] of this.applied) if (xid < xmin) this.applied.delete(id)
    this.syncedAt = startedAt
    if (this.failingSince !== undefined) {
      this.options.log.info({ failedForMs: Date.now() - this.failingSince, applied: rows.length }, 'change feed caught up')
      this.failingSince = undefined
      this.lastError = undefined
      this.warnedBehind = false
    }
  }

  async stop() {
    this.stopped = true
    this.mode = 'stopped'
    if (this.timer) clearInterval(this.timer)
    await this.reading
    await this.listener?.end().catch(() => {})
    this.listener = undefined
    await this.reader?.end().catch(() => {})
    this.reader = undefined
  }
}
