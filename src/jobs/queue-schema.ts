// graphile-worker's schema (graphile_worker), installed and upgraded by its own migrations as the
// host migrates, so that an enqueue (migrations/public/010_jobs.sql) always has a queue to go to.
// Hosts migrating at once each apply a file or find it applied (graphile-worker records each file
// first); only its first step, making the schema on a new database, can collide, and the host
// that loses the race tries again and finds it made.
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import type { Logger } from 'pino'

/** A schema, table or row that another host's concurrent install made first. */
const MADE_ELSEWHERE = new Set(['23505', '42P06', '42P07'])
const ATTEMPTS = 3

export async function installJobQueue(pool: pg.Pool, log: Logger) {
  const gw = await import('graphile-worker')
  const logger = new gw.Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') log.warn(`job queue: ${message}`)
  })
  for (let attempt = 1; ; attempt++) {
    try {
      return await gw.runMigrations({ pgPool: pool, logger })
    } catch (err) {
      if (attempt >= ATTEMPTS || !MADE_ELSEWHERE.has((err as { code?: string }).code ?? '')) throw err
      await sleep(100 * attempt)
    }
  }
}
