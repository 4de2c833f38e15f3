// Runs modules' jobs (docs/jobs.md) on graphile-worker: it fetches, locks, retries with
// exponential backoff, keeps failed jobs with their last error, and fires each schedule once per
// period across every host. What plinth adds:
// - each attempt runs in its tenant's transaction, as the tenant's role, like a request
//   (runInTenantTransaction): its writes, and the jobs it enqueues, commit with it or not at all;
// - a dropped tenant's jobs are discarded; a suspended tenant's, or a disabled module's, are passed
//   over (graphile-worker's forbidden flags) and wait;
// - a schedule fans out to one job for each tenant that has the module enabled;
// - a worker not heard from within PLINTH_JOBS_LOCK_TIMEOUT_MS (its process killed) has its jobs
//   unlocked, and they run again (graphile-worker alone waits four hours).
// graphile-worker is imported only when a runner starts: a process that runs no job never loads it.
import { AsyncLocalStorage } from 'node:async_hooks'
import { EventEmitter } from 'node:events'
import os from 'node:os'
import pg from 'pg'
import type { Logger } from 'pino'
import type { Job, JobHelpers, Runner, TaskList } from 'graphile-worker'
import { tracing } from '../platform/tracing.ts'
import type { TenantRegistry } from '../tenancy/registry.ts'
import type { TenantModules } from '../tenancy/tenant-modules.ts'
import { runInTenantTransaction, type TenantDb, type TenantPool } from '../tenancy/transaction.ts'
import { JobDefinitions, type JobDefinition } from './definitions.ts'

/** The task a schedule fires; not a module's name (module ids start with a letter). */
const FAN_OUT = '$plinth.schedule'
/** How long a computed list of forbidden flags serves (graphile-worker asks before every fetch). */
const FLAGS_TTL_MS = 500

export interface JobRunnerOptions {
  /** Where graphile-worker's own connections go (DATABASE_URL, or the embedded database's socket). */
  connectionString: string
  platformPool: pg.Pool
  tenantPool: TenantPool
  registry: TenantRegistry
  tenantModules: TenantModules
  definitions: JobDefinitions
  log: Logger
  concurrency: number
  pollMs: number
  lockTimeoutMs: number
  observer?: JobObserver
}

/** Metrics' view of jobs (app/metrics.ts). */
export interface JobObserver {
  started(moduleId: string, tenantId: string, waitedSeconds: number): void
  finished(moduleId: string, tenantId: string, outcome: 'completed' | 'failed' | 'discarded', seconds: number): void
}

/** What a job's handler gets as its second argument (the contract's ModuleJob). */
export interface RunningJob {
  id: string
  name: string
  tenant: { id: string; code: string; name: string; schema: string }
  attempt: number
  maxAttempts: number
  db: TenantDb
  log: Logger
}

/** The job the code running now belongs to: its tenant's code (ctx.trace's spans carry it). */
export const currentJob = new AsyncLocalStorage<{ tenant: string }>()

/** What one runUntilIdle did. */
export interface JobsRun {
  completed: number
  failed: number
}

export class JobRunner {
  private runner: Runner | undefined
  private workerPool: pg.Pool | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private readonly workerIds = new Set<string>()
  private flags: { at: number; list: string[] } | undefined
  private starting: Promise<void> | undefined

  constructor(private readonly o: JobRunnerOptions) {}

  /** Starts polling (and listening) for jobs, and firing schedules. */
  start(): Promise<void> {
    // A stop that comes while this is starting (a SIGTERM just after the server listens) waits for it.
    this.starting = this.begin()
    return this.starting
  }

  private async begin() {
    const gw = await import('graphile-worker')
    const events = this.events()
    this.runner = await gw.run({
      ...this.shared(gw),
      events,
      concurrency: this.o.concurrency,
      pollInterval: this.o.pollMs,
      parsedCronItems: gw.parseCronItems(
        this.o.definitions.schedules.map((s) => ({
          task: FAN_OUT,
          match: s.cron,
          identifier: `plinth:${JobDefinitions.task(s.moduleId, s.name)}`,
          payload: { module: s.moduleId, job: s.name, payload: s.payload },
          options: { backfillPeriod: 0, maxAttempts: 3 },
        })),
      ),
    })
    this.heartbeat = setInterval(() => void this.beat().catch((err) => this.o.log.warn({ err: { message: err.message } }, 'jobs: heartbeat failed')), Math.max(250, Math.floor(this.o.lockTimeoutMs / 3)))
    this.heartbeat.unref()
    await this.beat()
  }

  /** Runs every job due now, and those they enqueue for now, then returns (the harness's h.runJobs()). */
  async runUntilIdle(): Promise<JobsRun> {
    const gw = await import('graphile-worker')
    // Its workers stop as it returns: they are not this runner's to keep alive.
    const events = new EventEmitter()
    const run: JobsRun = { completed: 0, failed: 0 }
    this.flags = undefined
    events.on('job:success', () => run.completed++)
    events.on('job:error', () => run.failed++)
    await gw.runOnce({ ...this.shared(gw), events: events as never })
    return run
  }

  /** Lets running jobs finish (graphile-worker's graceful shutdown), then closes its connections. */
  async stop() {
    await this.starting?.catch(() => {})
    this.starting = undefined
    clearInterval(this.heartbeat)
    this.heartbeat = undefined
    const runner = this.runner
    this.runner = undefined
    await runner?.stop()
    if (this.workerIds.size > 0) {
      await this.o.platformPool.query('DELETE FROM public.sys_job_worker WHERE worker_id = ANY($1)', [[...this.workerIds]]).catch(() => {})
      this.workerIds.clear()
    }
    const pool = this.workerPool
    this.workerPool = undefined
    await pool?.end()
  }

  /** Options every run shares: the connections, the tasks, the log, the flags passed over. */
  private shared(gw: typeof import('graphile-worker')) {
    // Its fetches, its LISTEN and its bookkeeping, apart from the platform's pool.
    this.workerPool ??= new pg.Pool({ connectionString: this.o.connectionString, max: this.o.concurrency + 2 })
    return {
      pgPool: this.workerPool,
      taskList: this.taskList(),
      // Prepared statements do not survive PgBouncer in transaction mode.
      noPreparedStatements: true,
      noHandleSignals: true,
      logger: new gw.Logger((scope) => (level, message, meta) => {
        const line = { ...scope, ...meta }
        if (level === 'error') this.o.log.error(line, `jobs: ${message}`)
        else if (level === 'warning') this.o.log.warn(line, `jobs: ${message}`)
        else this.o.log.debug(line, `jobs: ${message}`)
      }),
      forbiddenFlags: () => this.forbiddenFlags(),
    }
  }

  private events() {
    const events = new EventEmitter()
    events.on('worker:create', ({ worker }: { worker: { workerId: string } }) => {
      this.workerIds.add(worker.workerId)
    })
    return events as never
  }

  private taskList(): TaskList {
    const tasks: TaskList = {}
    for (const definition of this.o.definitions.all()) tasks[JobDefinitions.task(definition.moduleId, definition.name)] = (payload, helpers) => this.attempt(definition, payload, helpers)
    if (this.o.definitions.schedules.length > 0) tasks[FAN_OUT] = (payload) => this.fanOut(payload as FanOut)
    return tasks
  }

  /** One attempt of a job, in its tenant's transaction. */
  private async attempt(definition: JobDefinition, raw: unknown, helpers: JobHelpers): Promise<void> {
    const { tenant: tenantId, payload } = raw as { tenant: string; payload: unknown }
    const { job: row } = helpers
    const started = performance.now()
    const tenant = await this.o.registry.find(tenantId)
    if (!tenant) {
      this.o.log.info({ job: row.id, module: definition.moduleId }, `jobs: ${row.task_identifier} discarded: its tenant was dropped`)
      this.o.observer?.finished(definition.moduleId, tenantId, 'discarded', 0)
      return
    }
    // Passed over by the flags; here only when it changed between the fetch and now. Tried again later.
    if (tenant.status !== 'active') throw new Error(`the tenant is ${tenant.status}`)
    const state = this.o.tenantModules.state(tenant.id, definition.moduleId)
    if (!state?.enabled || state.status !== 'ready') throw new Error(`module ${definition.moduleId} is not enabled and ready for the tenant`)
    this.o.observer?.started(definition.moduleId, tenant.id, Math.max(0, (Date.now() - row.run_at.getTime()) / 1000))
    const log = this.o.log.child({ module: definition.moduleId, tenant: tenant.code, job: String(row.id) })
    const work = () =>
      currentJob.run({ tenant: tenant.code }, () => runInTenantTransaction(this.o.tenantPool, tenant, async (db) => {
        const job: RunningJob = {
          id: String(row.id),
          name: definition.name,
          tenant: { id: tenant.id, code: tenant.code, name: tenant.name, schema: tenant.schema },
          attempt: row.attempts,
          maxAttempts: row.max_attempts,
          db,
          log,
        }
        await definition.handler(payload, job)
      }))
    try {
      await (tracing ? tracing.root(`job ${row.task_identifier}`, { 'plinth.module': definition.moduleId, 'plinth.tenant': tenant.code, 'plinth.job.id': String(row.id), 'plinth.job.attempt': row.attempts }, work) : work())
    } catch (err) {
      const last = row.attempts >= row.max_attempts
      if (!last) await this.jitter(row, helpers).catch(() => {})
      log.error({ err, attempt: row.attempts, maxAttempts: row.max_attempts }, last ? `job ${row.task_identifier} failed for the last time: kept as failed` : `job ${row.task_identifier} failed: it runs again later`)
      this.o.observer?.finished(definition.moduleId, tenant.id, 'failed', (performance.now() - started) / 1000)
      throw err
    }
    this.o.observer?.finished(definition.moduleId, tenant.id, 'completed', (performance.now() - started) / 1000)
  }

  /**
   * Spreads retries that failed together (a database or a service down for every job at once).
   * graphile-worker sets the next attempt at greatest(now(), run_at) + e^attempts seconds; moving
   * run_at up to half that much past now, before it does, adds the jitter it lacks.
   */
  private async jitter(row: Job, helpers: JobHelpers) {
    const ms = Math.round(Math.random() * 500 * Math.exp(Math.min(row.attempts, 10)))
    await helpers.withPgClient((client) => client.query("UPDATE graphile_worker._private_jobs SET run_at = now() + $2 * interval '1 millisecond' WHERE id = $1", [row.id, ms]))
  }

  /** A schedule's period began (on one host of all): one job for each tenant that has its module enabled. */
  private async fanOut({ module, job, payload, _cron }: FanOut) {
    const tenants = this.o.registry
      .list()
      .filter((t) => {
        const state = this.o.tenantModules.state(t.id, module)
        return t.status === 'active' && state?.enabled === true && state.status === 'ready'
      })
      .map((t) => t.id)
    if (tenants.length === 0) return
    // Keyed by the period: a fan-out run again (a retry) adds no second job for it.
    await this.o.platformPool.query(
      'SELECT public.sys_job_add(t.id, $1, $2, $3::json, NULL, $4, NULL, NULL) FROM unnest($5::uuid[]) AS t(id)',
      [module, job, JSON.stringify(payload ?? null), `schedule:${_cron?.ts ?? new Date().toISOString()}`, tenants],
    )
  }

  /** Suspended tenants' jobs and disabled (or failed) modules' jobs are passed over, not run. */
  private forbiddenFlags(): string[] {
    const now = Date.now()
    if (this.flags && now - this.flags.at < FLAGS_TTL_MS) return this.flags.list
    const modules = [...new Set(this.o.definitions.all().map((d) => d.moduleId))]
    const list: string[] = []
    for (const tenant of this.o.registry.list()) {
      if (tenant.status !== 'active') {
        list.push(`tenant:${tenant.id}`)
        continue
      }
      for (const moduleId of modules) {
        const state = this.o.tenantModules.state(tenant.id, moduleId)
        if (state && (!state.enabled || state.status !== 'ready')) list.push(`module:${tenant.id}:${moduleId}`)
      }
    }
    this.flags = { at: now, list }
    return list
  }

  /** Says this process's workers are alive; unlocks the jobs of workers that are not. */
  private async beat() {
    if (this.workerIds.size > 0) {
      await this.o.platformPool.query(
        `INSERT INTO public.sys_job_worker (worker_id, host) SELECT unnest($1::text[]), $2
         ON CONFLICT (worker_id) DO UPDATE SET seen_at = now()`,
        [[...this.workerIds], `${os.hostname()}:${process.pid}`],
      )
    }
    await this.o.platformPool.query(
      `WITH gone AS (DELETE FROM public.sys_job_worker WHERE seen_at < now() - $1 * interval '1 millisecond' RETURNING worker_id)
       SELECT graphile_worker.force_unlock_workers(ARRAY(SELECT worker_id FROM gone))`,
      [this.o.lockTimeoutMs],
    )
  }
}

interface FanOut {
  module: string
  job: string
  payload: unknown
  _cron?: { ts: string }
}

export type { Job }
