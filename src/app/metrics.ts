// Prometheus metrics (prom-client), one registry per host: requests by module, route pattern and
// status class with their latency; the database pool, the wait for a client, transactions
// committed and rolled back; the change feed's lag and mode; tenants and modules by status; and
// Node's own (event loop lag, heap, GC). Per-tenant labels are off by default (a thousand tenants
// would make a thousand series of each) and can be turned on for named tenants or all.
//
// Served at GET /metrics on the main port behind a token, or on METRICS_PORT with none (app.ts,
// server.ts).
import client from 'prom-client'
import type pg from 'pg'
import type { ChangeFeed } from '../platform/db/changes.ts'
import type { TenantRegistry } from '../tenancy/registry.ts'
import { TransactionMetrics } from '../tenancy/transaction-metrics.ts'
import type { ModuleRecord } from '../modules/discovery.ts'
import type { JobObserver } from '../jobs/runner.ts'

/** A pool as the gauges read it. */
interface PoolCounts {
  totalCount: number
  idleCount: number
  waitingCount: number
}

export interface MetricsSources {
  /** The platform's connections; in 'shared' mode, tenant work's too. */
  pool: pg.Pool
  /** Connections logged in as tenants ('login' mode). */
  tenantConnections?: PoolCounts
  changes: ChangeFeed
  registry: TenantRegistry
  modules: () => ModuleRecord[]
}

/** Which tenants get a label of their own: none, all, or these codes (the rest are `other`). */
export type TenantLabels = 'none' | '*' | string[]

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** What the metrics take of a finished request. */
export interface FinishedRequest {
  /** The module whose route answered; none for the host's own routes. */
  module?: string
  /** The route's template; undefined when no route matched. */
  route?: string
  status: number
  tenant?: string
  seconds: number
}

/** Jobs by module and state, from graphile-worker's view; a schedule's fan-out ($plinth.*) is not a module's. */
const JOB_COUNTS = `SELECT split_part(task_identifier, '/', 1) AS module,
    (count(*) FILTER (WHERE locked_at IS NULL AND attempts < max_attempts))::int AS queued,
    (count(*) FILTER (WHERE locked_at IS NOT NULL))::int AS running,
    (count(*) FILTER (WHERE locked_at IS NULL AND attempts >= max_attempts))::int AS failed
  FROM graphile_worker.jobs WHERE task_identifier NOT LIKE '$%' GROUP BY 1`

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']

export class Metrics {
  readonly registry = new client.Registry()
  private readonly requests: client.Histogram<string>
  /** What tenant transactions report: the pool's TransactionObserver. */
  readonly transactions: TransactionMetrics
  /** What the job runner reports (jobs/runner.ts). */
  readonly jobs: JobObserver
  private readonly labelTenants: boolean
  private readonly requestSeries = new Map<string, client.Histogram.Internal<string>>()

  constructor(
    sources: MetricsSources,
    private readonly tenantLabels: TenantLabels,
  ) {
    const registers = [this.registry]
    this.labelTenants = tenantLabels !== 'none'
    this.requests = new client.Histogram({
      name: 'plinth_http_request_duration_seconds',
      help: 'Requests by module, route pattern and status class, and how long they took (its _count is the number of requests)',
      labelNames: this.labelTenants ? ['module', 'route', 'status_class', 'tenant'] : ['module', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.transactions = new TransactionMetrics(this.registry, LATENCY_BUCKETS)
    const { pool, tenantConnections, changes, registry, modules } = sources
    const pools: [string, PoolCounts][] = [['platform', pool], ...(tenantConnections ? [['tenants', tenantConnections] as [string, PoolCounts]] : [])]
    new client.Gauge({
      name: 'plinth_db_pool_clients',
      help: "Database connections by pool (the platform's; those logged in as tenants) and state",
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        for (const [name, counts] of pools) {
          this.set({ pool: name, state: 'in_use' }, counts.totalCount - counts.idleCount)
          this.set({ pool: name, state: 'idle' }, counts.idleCount)
          this.set({ pool: name, state: 'waiting' }, counts.waitingCount)
        }
      },
    })
    new client.Gauge({
      name: 'plinth_change_feed_lag_seconds',
      help: 'Seconds since the change feed last read public.sys_change (caches are at most this stale)',
      registers,
      collect() {
        this.set(changes.status().lagMs / 1000)
      },
    })
    new client.Gauge({
      name: 'plinth_change_feed_mode',
      help: 'How the change feed follows changes: 1 for the mode in use (listen or poll)',
      labelNames: ['mode'],
      registers,
      collect() {
        const mode = changes.status().mode
        for (const m of ['listen', 'poll', 'stopped']) this.set({ mode: m }, m === mode ? 1 : 0)
      },
    })
    new client.Gauge({
      name: 'plinth_tenants',
      help: 'Tenants by status',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = { active: 0, suspended: 0 }
        for (const tenant of registry.list()) counts[tenant.status]++
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      },
    })
    new client.Gauge({
      name: 'plinth_modules',
      help: 'Modules found, by status',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = { loaded: 0, failed: 0, refused: 0 }
        // The host imports every module's code: none of its modules is only `found`.
        for (const record of modules()) counts[record.status as keyof typeof counts]++
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      },
    })
    new client.Gauge({
      name: 'plinth_jobs',
      help: "Modules' jobs in the queue, by module and state (queued: waiting to run or to retry; running; failed: out of attempts)",
      labelNames: ['module', 'state'],
      registers,
      async collect() {
        this.reset()
        const { rows } = await pool
          .query<{ module: string; queued: number; running: number; failed: number }>(JOB_COUNTS)
          .catch(() => ({ rows: [] as { module: string; queued: number; running: number; failed: number }[] }))
        for (const row of rows) for (const state of ['queued', 'running', 'failed'] as const) this.set({ module: row.module, state }, row[state])
      },
    })
    this.jobs = this.jobMetrics(registers, registry)
    client.collectDefaultMetrics({ register: this.registry, prefix: 'plinth_' })
  }

  private jobMetrics(registers: client.Registry[], registry: TenantRegistry): JobObserver {
    const labels = this.labelTenants ? ['module', 'tenant'] : ['module']
    const delay = new client.Histogram({
      name: 'plinth_job_start_delay_seconds',
      help: 'From the time a job was due to the time an attempt started, by module',
      labelNames: labels,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    })
    const finished = new client.Histogram({
      name: 'plinth_job_duration_seconds',
      help: "Job attempts by module and outcome (completed, failed; discarded: its tenant was dropped), and how long they took",
      labelNames: [...labels, 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    const tenantOf = (id: string) => this.tenantLabel(registry.get(id)?.code ?? 'dropped')
    const label = (module: string, tenantId: string) => (this.labelTenants ? { module, tenant: tenantOf(tenantId) } : { module })
    return {
      started: (module, tenantId, waited) => delay.observe(label(module, tenantId), waited),
      finished: (module, tenantId, outcome, seconds) => finished.observe({ ...label(module, tenantId), outcome }, seconds),
    }
  }

  /** One finished request (request-context.ts, onResponse). */
  observeRequest({ module = '', route, status, tenant, seconds }: FinishedRequest) {
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other'
    const tenantLabel = this.labelTenants ? this.tenantLabel(tenant) : ''
    // Unmatched URLs are one series, not one a URL.
    const routeLabel = route ?? 'unmatched'
    // The labelled child is looked up once per series: prom-client would hash the labels each time.
    const key = `${module}\u0000${routeLabel}\u0000${statusClass}\u0000${tenantLabel}`
    let series = this.requestSeries.get(key)
    if (!series) {
      series = this.labelTenants ? this.requests.labels(module, routeLabel, statusClass, tenantLabel) : this.requests.labels(module, routeLabel, statusClass)
      this.requestSeries.set(key, series)
    }
    series.observe(seconds)
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType() {
    return this.registry.contentType
  }

  private tenantLabel(code: string | undefined): string {
    if (!code) return ''
    if (this.tenantLabels === '*') return code
    return (this.tenantLabels as string[]).includes(code) ? code : 'other'
  }
}
