// The read-only commands. They open the database and read it: no module's code is imported (a
// module's manifest is, for the permissions it declares) and nothing is migrated, so an operator
// may run them against production at any time, and a module that throws on import stops none of
// them. A database whose public migrations are pending is refused: its tables may not be the ones
// these queries read. A brand-new one (nothing applied: a first `plinth tenant list` on a new
// machine) holds nothing yet, and reads as empty.
import path from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../app/config.ts'
import type { ModuleRecord } from '../modules/discovery.ts'
import { BUILTIN_MODULES_DIR, HOST_MIGRATIONS_DIR } from '../app/paths.ts'
import { ApiKeys } from '../access/api-keys.ts'
import { Roles } from '../access/roles.ts'
import { openDatabase, type Database } from '../platform/db/database.ts'
import { PendingMigrationsError, pendingPublicMigrations, readMigrations } from '../tenancy/migration-files.ts'
import { listTenants, tenantByCode, tenantNotFound } from '../tenancy/registry.ts'
import { needTenant, one, table, tenantTable, timeOption, UsageError, type CommandOutput, type Options } from './usage.ts'
import { auditInOrder, listAudit, type AuditFilter } from '../platform/audit/trail.ts'
import { verifyAudit } from '../platform/audit/verify.ts'
import type { AuditRow } from '../platform/audit/append.ts'
import { once } from 'node:events'
import { listJobs, showJob, type JobRow, type JobState } from '../jobs/operations.ts'

export interface Reader {
  db: Database
  /** No public migration has run here yet: there are no tenants, keys or roles to read. */
  brandNew: boolean
  /** Every module found, with its manifest read and checked; status `found`, or why not. */
  modules(): Promise<ModuleRecord[]>
}

type Read = (reader: Reader, args: string[], options: Options) => Promise<CommandOutput>

export async function openReader(config: Config, log: Logger): Promise<Reader & { close(): Promise<void> }> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2, acquireTimeoutMs: config.dbAcquireTimeoutMs, log })
  let brandNew: boolean
  try {
    const files = await readMigrations(path.join(HOST_MIGRATIONS_DIR, 'public'))
    const pending = await pendingPublicMigrations(db.pool, files)
    brandNew = pending.length === files.length
    if (pending.length > 0 && !brandNew) throw new PendingMigrationsError(pending)
  } catch (err) {
    await db.close()
    throw err
  }
  let modules: Promise<ModuleRecord[]> | undefined
  return {
    db,
    brandNew,
    // A folder named twice (src/plugins in PLINTH_MODULE_DIRS too) is read once.
    // Loaded on first need: checking manifests takes typebox, which tenant and key commands never do.
    modules: () =>
      (modules ??= import('../modules/discovery.ts').then(({ discoverModules }) =>
        discoverModules([...new Set([BUILTIN_MODULES_DIR, ...config.moduleDirs])], config.modules, { code: false }),
      )),
    close: () => db.close(),
  }
}

function jobTable(jobs: JobRow[]): string {
  return table([
    ['ID', 'TENANT', 'MODULE', 'JOB', 'STATE', 'ATTEMPTS', 'RUN AT', 'LAST ERROR'],
    ...jobs.map((j) => [j.id, j.tenant ?? '(dropped)', j.module, j.job, j.state, `${j.attempts}/${j.maxAttempts}`, j.runAt, (j.lastError ?? '-').split('\n')[0]!.slice(0, 60)]),
  ])
}

/** The tenant with this code; none exists on a brand-new database. */
function tenantOf(reader: Reader, code: string) {
  return reader.brandNew ? Promise.reject(tenantNotFound(code)) : tenantByCode(reader.db.pool, code)
}

export const reads: Record<string, Read> = {
  'jobs list': async (reader, args, options) => {
    if (args.length > 0) throw new UsageError('jobs list takes no positional argument')
    const limit = options.limit === undefined ? 50 : Number(options.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit takes a whole number from 1 to 1000, got ${JSON.stringify(options.limit)}`)
    const state = options.state as JobState | undefined
    if (state !== undefined && !['queued', 'running', 'failed'].includes(state)) throw new UsageError(`--state is queued, running or failed, got ${JSON.stringify(state)}`)
    const tenantId = options.tenant === undefined ? undefined : (await tenantOf(reader, options.tenant)).id
    const jobs = reader.brandNew ? [] : await listJobs(reader.db.pool, { tenantId, module: options.module, state }, limit)
    return { text: jobs.length === 0 ? 'no jobs\n' : jobTable(jobs), json: jobs }
  },
  'jobs show': async (reader, args) => {
    const id = one(args, 'job id')
    const job = reader.brandNew ? undefined : await showJob(reader.db.pool, id)
    if (!job) throw new UsageError(`no job has the id ${JSON.stringify(id)} (a completed job leaves the queue)`)
    const text = jobTable([job]) + `payload: ${JSON.stringify(job.payload)}\n` + (job.lastError ? `last error: ${job.lastError}\n` : '')
    return { text, json: job }
  },
  'tenant list': async ({ db, brandNew }) => {
    const tenants = brandNew ? [] : await listTenants(db.pool)
    return { text: tenantTable(tenants), json: tenants }
  },
  'tenant show': async (reader, args) => {
    const tenant = await tenantOf(reader, one(args, 'tenant code'))
    return { text: tenantTable([tenant]), json: tenant }
  },
  'key list': async (reader, _args, options) => {
    const keys = await new ApiKeys(reader.db.pool).list((await tenantOf(reader, needTenant(options))).id)
    const text = keys.length === 0 ? 'no keys\n' : table([['ID', 'NAME', 'CREATED', 'REVOKED'], ...keys.map((k) => [k.id, k.name, k.createdAt, k.revokedAt ?? '-'])])
    return { text, json: keys }
  },
  'role list': async (reader, _args, options) => {
    const tenant = await tenantOf(reader, needTenant(options))
    // What a grant can give: the permissions the modules found declare (as the host's role list says).
    const catalog = (await reader.modules()).filter((m) => m.status === 'found').flatMap((m) => m.manifest!.permissions)
    const roles = await new Roles(reader.db.pool, () => catalog).list(tenant)
    const text = table([
      ['ROLE', 'GRANTS', 'HOLDERS', 'GIVES NOTHING'],
      ...roles.map((r) => [r.name, r.grants.join(' ') || '-', r.principals.join(' ') || '-', r.unknownGrants.join(' ') || '-']),
    ])
    return { text, json: roles }
  },
  'module list': async (reader) => {
    const { describeModule } = await import('../modules/discovery.ts')
    const modules = (await reader.modules()).map((m) => describeModule(m, true))
    const rows = modules.map((m) => [m.id, m.version ?? '-', m.api ?? '-', m.status, m.reason ?? ''])
    const text = modules.length === 0
      ? 'no modules\n'
      : table([['ID', 'VERSION', 'API', 'STATUS', 'REASON'], ...rows]) + 'found: its manifest passes; its code is not imported here (`plinth doctor` loads and registers each module)\n'
    return { text, json: modules }
  },
  'audit list': async ({ db, brandNew }, args, options) => {
    if (args.length > 0) throw new UsageError('audit list takes no positional argument')
    const limit = options.limit === undefined ? 50 : Number(options.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit takes a whole number from 1 to 1000, got ${JSON.stringify(options.limit)}`)
    const page = brandNew ? { events: [], next: null } : await listAudit(db.pool, auditFilter(options), { limit, cursor: options.cursor })
    const rows = page.events.map((e) => [String(e.seq), e.at, actorText(e), e.action, e.target ?? '-', e.tenant ?? '-', e.outcome])
    const text = page.events.length === 0 ? 'no audit events\n' : table([['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'TENANT', 'OUTCOME'], ...rows]) + (page.next ? `more: --cursor ${page.next}\n` : '')
    return { text, json: page }
  },
  'audit export': async ({ db, brandNew }, args, options) => {
    if (args.length > 0) throw new UsageError('audit export takes no positional argument')
    const format = options.format ?? 'ndjson'
    if (format !== 'ndjson' && format !== 'csv') throw new UsageError(`--format is ndjson or csv, got ${JSON.stringify(format)}`)
    const filter = auditFilter(options)
    let count = 0
    if (format === 'csv') await emit(AUDIT_FIELDS.join(',') + '\n')
    if (!brandNew) {
      for await (const event of auditInOrder(db.pool, filter)) {
        await emit(format === 'csv' ? AUDIT_FIELDS.map((f) => csvCell(event[f])).join(',') + '\n' : JSON.stringify(event) + '\n')
        count++
      }
    }
    process.stderr.write(`exported ${count} audit event${count === 1 ? '' : 's'}\n`)
    return { text: '', json: { exported: count }, streamed: true }
  },
  'audit verify': async ({ db, brandNew }, args, options) => {
    if (args.length > 0) throw new UsageError('audit verify takes no positional argument')
    let witness: { seq: number; hash: string } | undefined
    if (options.head !== undefined) {
      const match = /^([0-9]+):([0-9a-f]{64})$/.exec(options.head)
      if (!match) throw new UsageError('--head takes <seq>:<hash>, as a checkpoint line of the log gives them')
      witness = { seq: Number(match[1]), hash: match[2] }
    }
    if (brandNew) return { text: 'audit trail: empty\n', json: { ok: true, checked: 0 } }
    const report = await verifyAudit(db.pool, witness)
    const text = report.ok
      ? `audit trail intact: ${report.checked} events checked, head ${report.head.seq}:${report.head.hash}\n`
      : `audit trail BROKEN at event ${report.broken!.seq}: ${report.broken!.problem}\n(${report.checked} events before it verified)\n`
    return { text, json: report, exitCode: report.ok ? 0 : 1 }
  },
}

function auditFilter(options: Options): AuditFilter {
  return { actor: options.actor, action: options.action, tenant: options.tenant, since: timeOption(options.since, '--since'), until: timeOption(options.until, '--until') }
}

const AUDIT_FIELDS = ['seq', 'at', 'actorKind', 'actorId', 'action', 'target', 'tenant', 'module', 'outcome', 'requestId', 'clientAddress', 'changes', 'prevHash', 'hash'] as const

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** Writes to stdout, waiting whenever it is full: an export of millions of rows holds a page at a time. */
async function emit(line: string) {
  if (!process.stdout.write(line)) await once(process.stdout, 'drain')
}

const actorText = (e: AuditRow) => (e.actorId ? `${e.actorKind}:${e.actorId}` : e.actorKind)

