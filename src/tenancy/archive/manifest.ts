// What a tenant archive says about itself: the tenant, the migrations its tables were made by, and
// each table's rows (how many, and their SHA-256). Written last in the archive (format.ts), read
// first on import; an archive is untrusted input, so everything in it is checked here before use.
import { problems } from '../../problems.ts'
import { isTenantCode } from '../schema-name.ts'

export const ARCHIVE_FORMAT = 'plinth-tenant-archive'
export const ARCHIVE_VERSION = 1

export interface LedgerEntry {
  name: string
  checksum: string
}

export interface ArchivedModule {
  id: string
  enabled: boolean
  /** The module's migration files applied to the tenant, in order: its tables' shape. */
  migrations: LedgerEntry[]
}

export interface ArchivedTable {
  name: string
  /** 'host': one of the host's RBAC tables, archived only with --with-access. */
  owner: 'module' | 'host'
  /** The columns the rows hold, in order (generated columns are left out: they are computed again). */
  columns: string[]
  rows: number
  /** SHA-256 (hex) of the table's rows as the archive holds them. */
  sha256: string
}

export interface ArchivedSequence {
  name: string
  /** Its last value as text (a bigint), or null when nothing was ever drawn from it. */
  value: string | null
}

export interface TenantManifest {
  format: typeof ARCHIVE_FORMAT
  version: typeof ARCHIVE_VERSION
  plinth: string
  exportedAt: string
  tenant: { code: string; name: string; domain: string | null }
  host: { migrations: LedgerEntry[] }
  modules: ArchivedModule[]
  /** In dependency order: a table comes after every table its foreign keys name. */
  tables: ArchivedTable[]
  sequences: ArchivedSequence[]
  /** With --with-access: the tenant's keys by name (never a secret or its hash), re-issued on import. */
  keys?: { id: string; name: string }[]
}

/** The manifest as export knows it before the rows are read: no counts or checksums yet. */
export type TenantPlan = Omit<TenantManifest, 'tables'> & { tables: Omit<ArchivedTable, 'rows' | 'sha256'>[] }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isText = (v: unknown, max = 200): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
const SHA256 = /^[0-9a-f]{64}$/
const BIGINT = /^-?\d{1,19}$/
const MODULE_ID = /^[a-z][a-z0-9-]{0,39}$/
const KEY_ID = /^[a-z0-9]{12}$/

function ledger(value: unknown, where: string): LedgerEntry[] {
  if (!Array.isArray(value)) throw problems.archiveInvalid(`The manifest's ${where} is not a list of migrations.`)
  return value.map((entry, i) => {
    if (!isObject(entry) || !isText(entry.name) || !isText(entry.checksum, 128)) throw problems.archiveInvalid(`The manifest's ${where}[${i}] is not a migration (name and checksum).`)
    return { name: entry.name, checksum: entry.checksum }
  })
}

/** The manifest of an archive, checked field by field; anything else is refused as ARCHIVE_INVALID. */
export function readManifest(json: unknown): TenantManifest {
  if (!isObject(json) || json.format !== ARCHIVE_FORMAT) throw problems.archiveInvalid('This is not a plinth tenant archive (its manifest is missing or names another format).')
  if (json.version !== ARCHIVE_VERSION) throw problems.archiveInvalid(`The archive is of format version ${JSON.stringify(json.version)}; this plinth reads version ${ARCHIVE_VERSION}.`)
  const { tenant, host } = json
  if (!isObject(tenant) || !isTenantCode(tenant.code) || !isText(tenant.name) || !(tenant.domain === null || isText(tenant.domain, 253))) {
    throw problems.archiveInvalid("The manifest's tenant is not a tenant (code, name, domain).")
  }
  if (!isObject(host)) throw problems.archiveInvalid("The manifest names no host migrations.")
  if (!Array.isArray(json.modules) || !Array.isArray(json.tables) || !Array.isArray(json.sequences)) {
    throw problems.archiveInvalid('The manifest lacks its modules, tables or sequences.')
  }
  const modules = json.modules.map((m, i): ArchivedModule => {
    if (!isObject(m) || typeof m.id !== 'string' || !MODULE_ID.test(m.id) || typeof m.enabled !== 'boolean') throw problems.archiveInvalid(`The manifest's modules[${i}] is not a module.`)
    return { id: m.id, enabled: m.enabled, migrations: ledger(m.migrations, `modules[${i}].migrations`) }
  })
  const tables = json.tables.map((t, i): ArchivedTable => {
    const valid =
      isObject(t) && isText(t.name, 63) && (t.owner === 'module' || t.owner === 'host') && Array.isArray(t.columns) && t.columns.every((c) => isText(c, 63)) &&
      Number.isSafeInteger(t.rows) && (t.rows as number) >= 0 && typeof t.sha256 === 'string' && SHA256.test(t.sha256)
    if (!valid) throw problems.archiveInvalid(`The manifest's tables[${i}] is not a table (name, owner, columns, rows, sha256).`)
    return { name: t.name as string, owner: t.owner as ArchivedTable['owner'], columns: t.columns as string[], rows: t.rows as number, sha256: t.sha256 as string }
  })
  const names = new Set(tables.map((t) => t.name))
  if (names.size !== tables.length) throw problems.archiveInvalid('The manifest names a table twice.')
  const sequences = json.sequences.map((s, i): ArchivedSequence => {
    if (!isObject(s) || !isText(s.name, 63) || !(s.value === null || (typeof s.value === 'string' && BIGINT.test(s.value)))) throw problems.archiveInvalid(`The manifest's sequences[${i}] is not a sequence.`)
    return { name: s.name, value: s.value }
  })
  let keys: TenantManifest['keys']
  if (json.keys !== undefined) {
    if (!Array.isArray(json.keys)) throw problems.archiveInvalid("The manifest's keys are not a list.")
    keys = json.keys.map((k, i) => {
      if (!isObject(k) || typeof k.id !== 'string' || !KEY_ID.test(k.id) || !isText(k.name, 100)) throw problems.archiveInvalid(`The manifest's keys[${i}] is not a key (id and name).`)
      return { id: k.id, name: k.name }
    })
  }
  return {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    plinth: String(json.plinth ?? 'unknown'),
    exportedAt: String(json.exportedAt ?? ''),
    tenant: { code: tenant.code, name: tenant.name, domain: tenant.domain as string | null },
    host: { migrations: ledger(host.migrations, 'host.migrations') },
    modules,
    tables,
    sequences,
    ...(keys ? { keys } : {}),
  }
}
