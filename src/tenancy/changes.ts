// Cache invalidation across host instances. A writer records a change (topic + key) in
// public.sys_change inside its own transaction, so it is seen only if it commits; every instance
// reads the rows it has not seen yet. On PostgreSQL a trigger's NOTIFY wakes the reader at once;
// the embedded database has no cross-connection NOTIFY, so there the reader polls.
import pg from 'pg'
import type { Logger } from 'pino'

export type ChangeTopic = 'tenant' | 'plugin' | 'rbac' | 'key'
type Listener = (key: string) => void | Promise<void>

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>

/** Records a change; call it inside the transaction that makes the change. */
export async function recordChange(db: Queryable, topic: ChangeTopic, key: string) {
  await db.query('INSERT INTO public.sys_change (topic, key) VALUES ($1, $2)', [topic, key])
}

export class ChangeFeed {
  private listeners = new Map<ChangeTopic, Listener[]>()
  private lastId = 0n
  private listenClient: pg.Client | undefined
  private timer: NodeJS.Timeout | undefined
  private reading: Promise<void> | undefined
  private again = false
  private stopped = false

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: { mode: 'notify' | 'poll'; connectionString: string; pollMs?: number; log: Logger },
  ) {}

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

  /**
   * Tells this instance's listeners now, without the round trip through the table; resolves once
   * they are done, so the instance that made a change serves it on its very next request.
   */
  async emitLocal(topic: ChangeTopic, key: string) {
    await Promise.all((this.listeners.get(topic) ?? []).map((listener) => listener(key)))
  }

  async start() {
    const { rows } = await this.pool.query<{ id: string | null }>('SELECT max(id)::text AS id FROM public.sys_change')
    this.lastId = BigInt(rows[0].id ?? 0)
    // Old rows are of no use to anyone: every instance reads from its own start onwards.
    await this.pool.query("DELETE FROM public.sys_change WHERE at < now() - interval '1 hour'")
    if (this.options.mode === 'notify') await this.listen()
    else {
      this.timer = setInterval(() => this.read(), this.options.pollMs ?? 250)
      this.timer.unref()
    }
  }

  private async listen() {
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'plinth-changes' })
    client.on('notification', () => this.read())
    client.on('error', (err) => {
      this.options.log.warn({ err: { message: err.message } }, 'change feed connection lost; reconnecting')
      this.listenClient = undefined
      client.end().catch(() => {})
      this.reconnect()
    })
    await client.connect()
    await client.query('LISTEN plinth_change')
    this.listenClient = client
    // Whatever happened while we were not listening.
    this.read()
  }

  private reconnect() {
    if (this.stopped) return
    setTimeout(() => this.listen().catch(() => this.reconnect()), 500).unref()
  }

  /** Reads the rows not seen yet; concurrent wake-ups collapse into one more read. */
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
          const { rows } = await this.pool.query<{ id: string; topic: ChangeTopic; key: string }>(
            'SELECT id::text, topic, key FROM public.sys_change WHERE id > $1 ORDER BY id',
            [this.lastId.toString()],
          )
          for (const row of rows) {
            await this.emitLocal(row.topic, row.key)
            // Advanced only once applied: a change that failed to apply is read again.
            this.lastId = BigInt(row.id)
          }
        } catch (err) {
          if (!this.stopped) {
            this.options.log.warn({ err: { message: (err as Error).message } }, 'could not apply the change feed; retrying')
            setTimeout(() => this.read(), 500).unref()
          }
        }
      } while (this.again && !this.stopped)
    })().finally(() => (this.reading = undefined))
  }

  async stop() {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    await this.reading
    await this.listenClient?.end().catch(() => {})
  }
}
