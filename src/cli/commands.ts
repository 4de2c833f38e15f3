// What each `plinth` command that writes does, given an open Host (the read-only ones are in
// reads.ts). Each returns text for people and the same facts as JSON for scripts (--json).
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import { TenantArchives, type ImportResult } from '../app/tenant-archives.ts'
import type { TenantManifest } from '../tenancy/archive/manifest.ts'
import type { Host } from '../app/host.ts'
import { HttpProblem } from '../problems.ts'
import { BUILTIN_MODULES_DIR } from '../app/paths.ts'
import { sql } from 'drizzle-orm'
import type { MigrateReport } from '../tenancy/migrate.ts'
import type { Tenant } from '../tenancy/registry.ts'
import { needTenant, one, table, tenantTable, timeOption, two, UsageError, type CommandOutput, type Options } from './usage.ts'
import { pruneAudit } from '../platform/audit/trail.ts'
import { appendAuditAlone } from '../platform/audit/append.ts'
import { cancelJobs, retryJobs } from '../jobs/operations.ts'
import { moveTenant, nodeName } from '../tenancy/placement.ts'
import type { NewTenant } from '../tenancy/tenants.ts'
import { dropOrphanedTenantRoles, orphanedTenantRoles } from '../tenancy/orphan-roles.ts'

const DEMO_TENANT = 'demo'

/** `jobs retry|cancel <id>...`: one audit row each time, naming the jobs it changed. */
async function jobsChange(host: Host, args: string[], verb: 'retried' | 'cancelled', change: (pool: Host['pool'], ids: string[]) => Promise<string[]>): Promise<CommandOutput> {
  if (args.length === 0) throw new UsageError(`jobs ${verb === 'retried' ? 'retry' : 'cancel'} takes one or more job ids`)
  for (const id of args) if (!/^[0-9]{1,18}$/.test(id)) throw new UsageError(`not a job id: ${JSON.stringify(id)}`)
  const changed = await change(host.pool, args)
  const missed = args.filter((id) => !changed.includes(id))
  if (changed.length > 0) await appendAuditAlone(host.pool, { action: verb === 'retried' ? 'jobs.retried' : 'jobs.cancelled', target: changed.join(','), changes: { jobs: changed } })
  const text = `${verb} ${changed.length} job${changed.length === 1 ? '' : 's'}${changed.length ? `: ${changed.join(', ')}` : ''}\n` + (missed.length ? `not ${verb} (no such job, or running now): ${missed.join(', ')}\n` : '')
  return { text, json: { [verb]: changed, missed }, exitCode: missed.length > 0 ? 1 : 0 }
}

/** `plinth worker`: the modules registered, their jobs run, no HTTP served; SIGTERM lets running jobs finish. */
async function runWorker(host: Host): Promise<CommandOutput> {
  const { registerModules } = await import('../http/mount-modules.ts')
  await registerModules(host)
  await host.jobs.start()
  host.log.warn({ jobs: host.jobDefinitions.all().length, schedules: host.jobDefinitions.schedules.length, concurrency: host.config.jobsConcurrency }, 'worker: running jobs (SIGTERM or SIGINT stops it)')
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  // Running jobs finish within PLINTH_SHUTDOWN_TIMEOUT_MS; past it the process exits under them,
  // and another worker runs them again once their lock times out (PLINTH_JOBS_LOCK_TIMEOUT_MS).
  host.log.warn('worker: stopping; running jobs finish first')
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    host.jobs.stop().then(() => 'stopped' as const),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), host.config.shutdownTimeoutMs))),
  ])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    return { text: `worker stopped after ${host.config.shutdownTimeoutMs} ms with jobs still running: they run again elsewhere once their lock times out\n`, json: { stopped: true, unfinished: true }, exitCode: 1 }
  }
  return { text: 'worker stopped\n', json: { stopped: true } }
}

type Command = (host: Host, args: string[], options: Options) => Promise<CommandOutput>

/** A JSON array of tenants, from a file or standard input. */
async function readTenantList(file: string): Promise<NewTenant[]> {
  const text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8').catch((err) => {
    throw new UsageError(`cannot read ${file}: ${err.code ?? err.message}`)
  })
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`)
  }
  if (!Array.isArray(list)) throw new UsageError(`${file} must hold a JSON array of {"code", "name", "domain"?}`)
  return list
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`${flag} takes a whole number of 1 or more, got ${JSON.stringify(value)}`)
  return Number(value)
}

/** The module, or an error that says which modules there are and where they were looked for. */
function knownModule(host: Host, id: string): void {
  if (host.modules.some((m) => m.id === id)) return
  const found = host.modules.map((m) => m.id).join(', ') || 'none'
  const dirs = host.config.moduleDirs.length ? host.config.moduleDirs.join(', ') : 'not set'
  const only = host.config.modules === '*' ? '' : ` PLINTH_MODULES loads only: ${host.config.modules.join(', ')}.`
  throw new Error(
    `No module has the id "${id}". Modules found: ${found} (looked in ${BUILTIN_MODULES_DIR}; PLINTH_MODULE_DIRS: ${dirs}).${only} ` +
      'A folder of modules outside plinth goes in PLINTH_MODULE_DIRS, in the environment or in .env.',
  )
}

function exportedText(code: string, manifest: TenantManifest, where: string): string {
  const rows = manifest.tables.reduce((sum, t) => sum + t.rows, 0)
  return `exported tenant ${code}: ${manifest.tables.length} tables, ${rows} rows, modules ${manifest.modules.map((m) => m.id).join(', ') || 'none'}, to ${where}\n`
}

function importedOutput(verb: string, result: ImportResult): CommandOutput {
  const { tenant } = result
  const lines = [
    `${verb} tenant ${tenant.code} (schema ${tenant.schema}) from ${result.from}: ${result.tables} tables, ${result.rows} rows${result.replaced ? '; the tenant it replaced is dropped' : ''}`,
    ...result.keys.map((k) => `  key ${k.name}: ${k.key}   (shown once; the archive's key of that name is not valid here)`),
  ]
  return { text: lines.join('\n') + '\n', json: result }
}

const tenantOutput = (verb: string) => (tenant: Tenant): CommandOutput => ({
  text: `${verb} tenant ${tenant.code} (schema ${tenant.schema}, ${tenant.status})\n`,
  json: tenant,
})

function migrateText(report: MigrateReport): string {
  const lines = [
    report.publicApplied.length ? `public: applied ${report.publicApplied.join(', ')}` : 'public: up to date',
  ]
  if (report.tenants.length === 0) lines.push('tenants: nothing pending')
  for (const t of report.tenants) {
    const detail = t.recovered
      ? `nothing pending; was failed (${t.recovered}), ready again`
      : t.status === 'ok' ? `applied ${t.applied.join(', ') || 'nothing'}` : t.error
    lines.push(`${t.tenant} ${t.source}: ${t.status}, ${detail}`)
  }
  return lines.join('\n') + '\n'
}

export const commands: Record<string, Command> = {
  'tenant create': async (host, args, options) => {
    const code = one(args, 'tenant code')
    if (!options.name) throw new UsageError('tenant create needs --name')
    const tenant = await host.tenants.create({ code, name: options.name, domain: options.domain })
    await host.tenantModules.refresh(tenant.id)
    const modules = host.tenantModules.enabledFor(tenant.id).sort()
    return {
      text: `created tenant ${tenant.code} (schema ${tenant.schema}, ${tenant.status}); modules: ${modules.join(', ') || 'none'}\n`,
      json: { ...tenant, modules },
    }
  },
  'tenant create-many': async (host, args, options) => {
    const list = await readTenantList(one(args, 'file (or - for standard input)'))
    const started = performance.now()
    const report = await host.tenants.createMany(list, {
      concurrency: positiveInteger(options.concurrency, '--concurrency'),
      batchSize: positiveInteger(options['batch-size'], '--batch-size'),
    })
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    const lines = [`created ${report.created.length} of ${list.length} tenants in ${seconds} s`]
    for (const f of report.failed) lines.push(`  ${String(f.code)} (entry ${f.index + 1}): ${f.error}: ${f.detail}${f.errors ? ' ' + f.errors.map((e) => `${e.path} ${e.message}`).join('; ') : ''}`)
    return { text: lines.join('\n') + '\n', json: report, exitCode: report.failed.length > 0 ? 1 : 0 }
  },
  'tenant suspend': async (host, args) => tenantOutput('suspended')(await host.tenants.suspend(one(args, 'tenant code'))),
  'tenant resume': async (host, args) => tenantOutput('resumed')(await host.tenants.resume(one(args, 'tenant code'))),
  'tenant drop': async (host, args, options) =>
    tenantOutput('dropped')(await host.tenants.drop(one(args, 'tenant code'), options.confirm)),
  'tenant move': async (host, args, options) => {
    if (!options.to) throw new UsageError('tenant move needs --to <host:port> (one of the workers)')
    const tenant = await host.tenants.get(one(args, 'tenant code'))
    const move = await moveTenant(host.pool, tenant, options.to)
    const text = move.ms === 0 ? `tenant ${tenant.code} is on ${nodeName(move.to)} already\n` : `moved tenant ${tenant.code} (schema ${tenant.schema}) from ${nodeName(move.from)} to ${nodeName(move.to)} in ${(move.ms / 1000).toFixed(1)} s\n`
    return { text, json: { tenant: tenant.code, schema: tenant.schema, from: nodeName(move.from), to: nodeName(move.to), ms: move.ms } }
  },
  'tenant export': async (host, args, options) => {
    const code = one(args, 'tenant code')
    const archives = new TenantArchives(host)
    const withAccess = options['with-access'] ?? false
    if (!options.out) {
      const manifest = await archives.export(code, process.stdout, { withAccess })
      process.stderr.write(exportedText(code, manifest, 'standard output'))
      return { text: '', json: manifest, streamed: true }
    }
    if (await fs.stat(options.out).then(() => true, () => false)) throw new Error(`${options.out} exists: an export does not overwrite a file`)
    // Written beside the file and renamed when complete: a file of that name is a whole archive.
    const partial = `${options.out}.partial`
    const out = createWriteStream(partial, { flags: 'wx' })
    try {
      const manifest = await archives.export(code, out, { withAccess })
      out.end()
      await finished(out)
      await fs.rename(partial, options.out)
      return { text: exportedText(code, manifest, options.out), json: manifest }
    } catch (err) {
      out.destroy()
      await fs.rm(partial, { force: true })
      throw err
    }
  },
  'tenant import': async (host, args, options) => {
    const file = one(args, 'archive file (or - for standard input)')
    if (!options.as) throw new UsageError('tenant import needs --as <code>: the code the tenant takes here')
    const importOptions = { as: options.as, replace: options.replace ?? false, name: options.name, domain: options.domain }
    const archives = new TenantArchives(host)
    const result = file === '-' ? await archives.importStream(process.stdin, importOptions) : await archives.importFile(file, importOptions)
    return importedOutput('imported', result)
  },
  'tenant clone': async (host, args, options) => {
    const code = one(args, 'tenant code')
    if (!options.as) throw new UsageError('tenant clone needs --as <code>: the new tenant\'s code')
    const result = await new TenantArchives(host).clone(code, { as: options.as, name: options.name, domain: options.domain, withAccess: options['with-access'] ?? false })
    return importedOutput(`cloned ${code} as`, result)
  },
  'audit prune': async (host, args, options) => {
    if (args.length > 0) throw new UsageError('audit prune takes no positional argument: use --before <time>')
    const before = timeOption(options.before, '--before')
    if (!before) throw new UsageError('audit prune needs --before <time>')
    const pruned = await pruneAudit(host.pool, before)
    const text = pruned.removed === 0
      ? `no audit events before ${before.toISOString()}\n`
      : `removed ${pruned.removed} audit events (through ${pruned.through}); the chain was sealed first and still verifies\n`
    return { text, json: pruned }
  },
  'console sessions': async (host, args, options) => {
    const [verb = 'list', id, ...more] = args
    if (more.length > 0 || !['list', 'revoke'].includes(verb)) throw new UsageError('console sessions takes list, or revoke <session id> | --all')
    if (verb === 'list') {
      const sessions = await host.consoleSessions.list({ live: !options.all })
      const text = sessions.length === 0
        ? 'no live console sessions\n'
        : table([['ID', 'OPERATOR', 'FROM', 'SIGNED IN', 'LAST SEEN', 'ENDED'], ...sessions.map((s) => [s.id, s.operator, s.clientAddress ?? '-', s.createdAt, s.lastSeenAt, s.endedAt ? `${s.endedAt} (${s.endedWhy})` : '-'])])
      return { text, json: sessions }
    }
    if (options.all === (id !== undefined)) throw new UsageError('console sessions revoke takes one session id, or --all')
    const ended = options.all ? await host.consoleSessions.endAll() : [await host.consoleSessions.end(id!, 'revoked')].filter((s) => s !== undefined)
    if (!options.all && ended.length === 0) throw new HttpProblem(404, 'SESSION_NOT_FOUND', `No live console session has the id ${JSON.stringify(id)}.`)
    return { text: ended.length === 0 ? 'no live console sessions\n' : ended.map((s) => `revoked console session ${s.id} (${s.operator})\n`).join(''), json: ended }
  },
  'key create': async (host, args, options) => {
    if (args.length > 0) throw new UsageError('key create takes no positional argument: use --name')
    if (!options.name) throw new UsageError('key create needs --name')
    const created = await host.createKey(needTenant(options), options.name, options.role ?? [])
    return {
      text: `created key ${created.id} (${created.name}) for ${options.tenant}${options.role?.length ? `, roles ${options.role.join(', ')}` : ''}\n` +
        `${created.key}\nStore it now: it cannot be shown again.\n`,
      json: created,
    }
  },
  'key revoke': async (host, args, options) => {
    const key = await host.keys.revoke(await host.tenants.get(needTenant(options)), one(args, 'key id'))
    return { text: `revoked key ${key.id} (${key.name})\n`, json: key }
  },
  'role create': async (host, args, options) => {
    const name = one(args, 'role name')
    await host.roles.create(await host.tenants.get(needTenant(options)), name, options.description)
    return { text: `created role ${name}\n`, json: { role: name } }
  },
  'role delete': async (host, args, options) => {
    const name = one(args, 'role name')
    await host.roles.remove(await host.tenants.get(needTenant(options)), name)
    return { text: `deleted role ${name}\n`, json: { role: name } }
  },
  'role grant': async (host, args, options) => {
    const [role, permission] = two(args, 'a role and a permission')
    await host.roles.grant(await host.tenants.get(needTenant(options)), role, permission)
    return { text: `granted ${permission} to ${role}\n`, json: { role, permission } }
  },
  'role revoke': async (host, args, options) => {
    const [role, permission] = two(args, 'a role and a permission')
    await host.roles.revoke(await host.tenants.get(needTenant(options)), role, permission)
    return { text: `revoked ${permission} from ${role}\n`, json: { role, permission } }
  },
  'role assign': async (host, args, options) => {
    const role = one(args, 'role name')
    if (!options.principal) throw new UsageError('role assign needs --principal')
    await host.roles.assign(await host.tenants.get(needTenant(options)), role, options.principal)
    return { text: `assigned ${role} to ${options.principal}\n`, json: { role, principal: options.principal } }
  },
  'role unassign': async (host, args, options) => {
    const role = one(args, 'role name')
    if (!options.principal) throw new UsageError('role unassign needs --principal')
    await host.roles.unassign(await host.tenants.get(needTenant(options)), role, options.principal)
    return { text: `unassigned ${role} from ${options.principal}\n`, json: { role, principal: options.principal } }
  },
  'module enable': async (host, args, options) => {
    if (!options.tenant) throw new UsageError('module enable needs --tenant')
    const id = one(args, 'module id')
    knownModule(host, id)
    const result = await host.enableModule(options.tenant, id)
    const text = result.status === 'ok'
      ? `enabled ${result.source} for ${result.tenant}${result.applied.length ? ` (applied ${result.applied.join(', ')})` : ''}\n`
      : `enabled ${result.source} for ${result.tenant}, but its migrations ${result.status}: ${result.error}\n`
    return { text, json: result, exitCode: result.status === 'ok' ? 0 : 1 }
  },
  'module disable': async (host, args, options) => {
    if (!options.tenant) throw new UsageError('module disable needs --tenant')
    const id = one(args, 'module id')
    const tenant = await host.tenants.get(options.tenant)
    // A module no longer found may still be enabled somewhere: that one can be disabled.
    if (!host.tenantModules.state(tenant.id, id)) knownModule(host, id)
    await host.disableModule(options.tenant, id)
    return { text: `disabled ${id} for ${options.tenant}\n`, json: { tenant: options.tenant, module: id, enabled: false } }
  },
  demo: async (host) => {
    const existing = host.registry.byCode(DEMO_TENANT)
    const tenant = existing ?? (await host.tenants.create({ code: DEMO_TENANT, name: 'Demo' }))
    if (!host.tenantModules.state(tenant.id, 'inventory')?.enabled) await host.enableModule(DEMO_TENANT, 'inventory')
    if (!existing) {
      await host.withTenantTx(tenant.id, async (db) => {
        for (const [name, quantity] of [['Kettle', 3], ['Teapot', 12], ['Mug', 40]] as const) {
          await db.execute(sql`INSERT INTO items (name, quantity) VALUES (${name}, ${quantity})`)
        }
      })
    }
    const created = await host.createKey(DEMO_TENANT, `demo-${Date.now().toString(36)}`, ['admin'])
    const base = `http://${host.config.host === '0.0.0.0' ? '127.0.0.1' : host.config.host}:${host.config.port}`
    const curl = `curl -H 'Authorization: Bearer ${created.key}' ${base}/api/plugins/inventory/items`
    return {
      text:
        `${existing ? 'tenant demo already there' : 'created tenant demo with 3 items'}; a new admin key for it (shown once):\n${created.key}\n\n` +
        `With the host running (npm start), try:\n  ${curl}\nThe API's documentation: ${base}/docs\n`,
      json: { tenant: DEMO_TENANT, key: created.key, curl },
    }
  },
  'jobs retry': async (host, args) => jobsChange(host, args, 'retried', retryJobs),
  'jobs cancel': async (host, args) => jobsChange(host, args, 'cancelled', cancelJobs),
  worker: async (host, args) => {
    if (args.length > 0) throw new UsageError('worker takes no argument')
    return runWorker(host)
  },
  'orphan-roles': async (host, args, options) => {
    if (args.length > 0) throw new UsageError(`orphan-roles takes no arguments, got ${args.join(' ')}`)
    const orphans = options.drop ? await dropOrphanedTenantRoles(host.pool) : await orphanedTenantRoles(host.pool)
    const lines = orphans.map((o) => `${o.role} (database ${o.database})`)
    const text = orphans.length === 0 ? 'no tenant role outlives its database\n' : `${options.drop ? 'dropped' : 'tenant roles whose database is gone (plinth orphan-roles --drop removes them)'}:\n  ${lines.join('\n  ')}\n`
    return { text, json: { dropped: Boolean(options.drop), roles: orphans } }
  },
  doctor: async (host, _args, options) => {
    // Imported here: it mounts the modules as the server would, and no other command needs Fastify.
    const { doctorText, runDoctor } = await import('./doctor.ts')
    const checks = await runDoctor(host, { url: options.url })
    return { text: doctorText(checks), json: checks, exitCode: checks.some((c) => c.result === 'fail') ? 1 : 0 }
  },
  migrate: async (host, args, options) => {
    if (options.tenant) {
      // One tenant: what is pending for it alone (the console's retry); public migrations were not pending.
      const report: MigrateReport = { publicApplied: [], tenants: await host.migrateTenant(options.tenant) }
      return { text: migrateText(report), json: report, exitCode: report.tenants.some((t) => t.status !== 'ok') ? 1 : 0 }
    }
    // Host.open has just migrated; report what it did.
    const report = host.lastMigration!
    const failed = report.tenants.some((t) => t.status !== 'ok')
    return { text: migrateText(report), json: report, exitCode: failed ? 1 : 0 }
  },
}
