// graphile-worker's schema (graphile_worker), installed and upgraded by its own migrations as the
// host migrates, so that an enqueue (migrations/public/010_jobs.sql) always has a queue to go to.
// Its migrations take their own lock: hosts migrating at once apply each of them once.
import type pg from 'pg'
import type { Logger } from 'pino'

export async function installJobQueue(pool: pg.Pool, log: Logger) {
  const gw = await import('graphile-worker')
  await gw.runMigrations({
    pgPool: pool,
    logger: new gw.Logger(() => (level, message) => {
      if (level === 'error' || level === 'warning') log.warn(`job queue: ${message}`)
    }),
  })
}
