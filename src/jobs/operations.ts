// What operators do with jobs (`plinth jobs list|show|retry|cancel`): read graphile-worker's jobs
// view with each job's tenant and module, run a job again now, or take it out of the queue. A
// job running now is neither retried nor cancelled: graphile-worker leaves a locked job alone.
import type pg from 'pg'

export type JobState = 'queued' | 'running' | 'failed'

export interface JobRow {
  id: string
  tenant: string | null
  module: string
  job: string
  state: JobState
  attempts: number
  maxAttempts: number
  runAt: string
  lastError: string | null
  key: string | null
  createdAt: string
  payload?: unknown
}

export interface JobFilter {
  tenantId?: string
  module?: string
  state?: JobState
}

const STATE = `CASE WHEN j.locked_at IS NOT NULL THEN 'running' WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END`

const SELECT = `SELECT j.id::text, t.code AS tenant, split_part(j.task_identifier, '/', 1) AS module,
    substr(j.task_identifier, strpos(j.task_identifier, '/') + 1) AS job, ${STATE} AS state,
    j.attempts, j.max_attempts AS "maxAttempts", j.run_at AS "runAt", j.last_error AS "lastError",
    CASE WHEN j.key IS NULL THEN NULL ELSE substr(j.key, length(j.task_identifier) + 39) END AS key,
    j.created_at AS "createdAt"`

const FROM = `FROM graphile_worker.jobs j
  LEFT JOIN public.sys_tenant t ON 'plinth:' || t.id = j.queue_name
  WHERE j.task_identifier NOT LIKE '$%'`

/** The ids in $1 that are modules' jobs (not a schedule's fan-out). */
const MODULE_JOBS = `ARRAY(SELECT id FROM graphile_worker.jobs WHERE id = ANY($1::bigint[]) AND task_identifier NOT LIKE '$%')`

export async function listJobs(pool: pg.Pool, filter: JobFilter, limit: number): Promise<JobRow[]> {
  const { rows } = await pool.query<JobRow>(
    `${SELECT} ${FROM}
       AND ($1::uuid IS NULL OR j.queue_name = 'plinth:' || $1)
       AND ($2::text IS NULL OR j.task_identifier LIKE $2 || '/%')
       AND ($3::text IS NULL OR ${STATE} = $3)
     ORDER BY j.run_at, j.id LIMIT $4`,
    [filter.tenantId ?? null, filter.module ?? null, filter.state ?? null, limit],
  )
  return rows.map(times)
}

export async function showJob(pool: pg.Pool, id: string): Promise<JobRow | undefined> {
  if (!/^[0-9]{1,18}$/.test(id)) return undefined
  const { rows } = await pool.query<JobRow & { payload: { payload: unknown } }>(`${SELECT}, (SELECT p.payload FROM graphile_worker._private_jobs p WHERE p.id = j.id) AS payload ${FROM} AND j.id = $1`, [id])
  const row = rows[0]
  return row ? times({ ...row, payload: row.payload?.payload }) : undefined
}

/** Runs the jobs again now, with their attempts reset; returns the ids it changed (not those running). */
export async function retryJobs(pool: pg.Pool, ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id::text FROM graphile_worker.reschedule_jobs(${MODULE_JOBS}, run_at := now(), attempts := 0)`,
    [ids],
  )
  return rows.map((r) => r.id)
}

/** Takes the jobs out of the queue; returns the ids it removed (not those running). */
export async function cancelJobs(pool: pg.Pool, ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(`SELECT id::text FROM graphile_worker.complete_jobs(${MODULE_JOBS})`, [ids])
  return rows.map((r) => r.id)
}

function times<T extends { runAt: unknown; createdAt: unknown }>(row: T): T {
  return { ...row, runAt: new Date(row.runAt as string).toISOString(), createdAt: new Date(row.createdAt as string).toISOString() }
}
