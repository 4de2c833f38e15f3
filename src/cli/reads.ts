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
import { needTenant, one, table, tenantTable, type CommandOutput, type Options } from './usage.ts'

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

/** The tenant with this code; none exists on a brand-new database. */
function tenantOf(reader: Reader, code: string) {
  return reader.brandNew ? Promise.reject(tenantNotFound(code)) : tenantByCode(reader.db.pool, code)
}

export const reads: Record<string, Read> = {
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
}
