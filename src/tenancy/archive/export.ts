// Reading one tenant out: its manifest and its tables' rows, all from one snapshot (a REPEATABLE
// READ, READ ONLY transaction), so an export taken while the tenant serves is one moment of it.
// Rows leave through COPY ... TO STDOUT and are streamed on: memory holds a chunk, not a table.
import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { problems } from '../../problems.ts'
import { PLATFORM_SEARCH_PATH } from '../../platform/db/platform-transaction.ts'
import { quoteIdent } from '../../platform/db/sql-names.ts'
import type { Tenant } from '../registry.ts'
import { ArchiveWriter } from './format.ts'
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, type ArchivedModule, type LedgerEntry, type TenantManifest, type TenantPlan } from './manifest.ts'

export interface ExportOptions {
  /** The version of plinth that writes it, for the manifest. */
  plinthVersion: string
  /** Archive the tenant's roles, grants and holders (its RBAC tables) and its keys' names: --with-access. */
  withAccess?: boolean
  /**
   * When an export fails midway (its reader went away), its connection will be closed, which
   * ends the COPY and the transaction at once (PostgreSQL); false: the COPY is read to its end and
   * rolled back, leaving the connection clean (the embedded database, one session for all).
   */
  closeOnFailure: boolean
}

/** A tenant as of one moment: what its archive's manifest will say, and each table's rows on demand. */
export class TenantSnapshot {
  private constructor(
    private readonly client: pg.Client,
    private readonly tenant: Tenant,
    readonly plan: TenantPlan,
    /** After a failure the connection is closed, not cleaned up (ExportOptions.closeOnFailure). */
    readonly closeOnFailure: boolean,
  ) {}

  /**
   * Opens the snapshot on `client` (a connection of its own, not pipelined: COPY needs one) and
   * reads the plan in it. The client is the snapshot's until close().
   */
  static async open(client: pg.Client, tenant: Tenant, { plinthVersion, withAccess = false, closeOnFailure }: ExportOptions): Promise<TenantSnapshot> {
    try {
      await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${PLATFORM_SEARCH_PATH}; SET LOCAL statement_timeout = 0`)
      const plan = await readPlan(client, tenant, withAccess, plinthVersion)
      return new TenantSnapshot(client, tenant, plan, closeOnFailure)
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
  }

  /**
   * One table's rows in COPY text format, as the tenant's role reads them (its own tables) or the
   * platform's (the host's RBAC tables, which the tenant's role cannot read).
   */
  async *rows(table: TenantPlan['tables'][number]): AsyncIterable<Buffer> {
    await this.client.query(table.owner === 'module' ? `SET LOCAL ROLE ${quoteIdent(this.tenant.role)}` : 'SET LOCAL ROLE NONE')
    const columns = table.columns.map((c) => pg.escapeIdentifier(c)).join(', ')
    const copy = this.client.query(copyTo(`COPY ${quoteIdent(this.tenant.schema)}.${pg.escapeIdentifier(table.name)} (${columns}) TO STDOUT`))
    let ended = false
    copy.once('end', () => (ended = true))
    try {
      // Not destroyed when the reader stops early: see finally.
      for await (const chunk of copy.iterator({ destroyOnReturn: false })) yield chunk as Buffer
    } finally {
      // A reader that stopped (its caller went away) leaves the COPY running on the connection.
      // Read to its end, the connection is clean again and can roll back: on the embedded
      // database, whose one session every connection shares, a connection dropped mid-COPY
      // leaves that session in a state the next statement fails on. On PostgreSQL the
      // connection is simply closed (closeOnFailure).
      if (!ended && !copy.destroyed) {
        if (this.closeOnFailure) {
          copy.on('error', () => {}) // the connection's end, which follows, fails it
          copy.destroy()
        } else {
          copy.resume()
          await finished(copy).catch(() => {})
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.client.query('ROLLBACK').catch(() => {})
  }
}

/** Writes the snapshot as an archive to `out` (format.ts), and returns its manifest. Does not end `out`. */
export async function writeArchive(snapshot: TenantSnapshot, out: Writable): Promise<TenantManifest> {
  const writer = new ArchiveWriter(out)
  await writer.start()
  const tables: TenantManifest['tables'] = []
  for (const table of snapshot.plan.tables) tables.push({ ...table, ...(await writer.table(table.name, snapshot.rows(table))) })
  const manifest: TenantManifest = { ...snapshot.plan, tables }
  await writer.finish(manifest)
  return manifest
}

interface CatalogTable {
  oid: number
  name: string
  owner: string
}

/** The tenant's manifest as far as the catalog and the ledgers tell it: everything but row counts and checksums. */
async function readPlan(client: pg.Client, tenant: Tenant, withAccess: boolean, plinthVersion: string): Promise<TenantPlan> {
  // One after another: a client runs one query at a time (and this one is not pipelined).
  const ledger = await client.query<{ source: string } & LedgerEntry>(
    'SELECT source, name, checksum FROM public.sys_tenant_migration WHERE tenant_id = $1 ORDER BY source, name',
    [tenant.id],
  )
  const modules = await client.query<{ id: string; enabled: boolean }>(
    'SELECT module_id AS id, enabled FROM public.sys_tenant_module WHERE tenant_id = $1 ORDER BY module_id',
    [tenant.id],
  )
  // Plain tables only: a partitioned table's rows are its partitions' (each a table here), a
  // view has none, and a materialized view is refreshed on import.
  const tables = await client.query<CatalogTable>(
    `SELECT c.oid::int AS oid, c.relname AS name, pg_get_userbyid(c.relowner) AS owner
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY c.relname`,
    [tenant.schema],
  )
  // Generated columns are computed again on import; dropped ones are gone.
  const columns = await client.query<{ oid: number; name: string }>(
    `SELECT a.attrelid::int AS oid, a.attname AS name FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attrelid, a.attnum`,
    [tenant.schema],
  )
  const foreignKeys = await client.query<{ constraint: string; from: number; to: number; toSchema: string; toTable: string }>(
    `SELECT k.conname AS constraint, k.conrelid::int AS from, k.confrelid::int AS to, n.nspname AS "toSchema", r.relname AS "toTable"
       FROM pg_constraint k JOIN pg_class f ON f.oid = k.conrelid
       JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE k.contype = 'f' AND f.relnamespace = $1::regnamespace`,
    [tenant.schema],
  )
  const sequences = await client.query<{ name: string; value: string | null }>(
    'SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = $1 ORDER BY sequencename',
    [tenant.schema],
  )
  const keys = withAccess
    ? await client.query<{ id: string; name: string }>('SELECT id, name FROM public.sys_api_key WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY name', [tenant.id])
    : null

  const byOid = new Map(tables.rows.map((t) => [t.oid, t]))
  for (const key of foreignKeys.rows) {
    if (key.toSchema !== tenant.schema) {
      throw problems.tenantNotExportable(
        `Table ${byOid.get(key.from)?.name} of tenant ${tenant.code} has a foreign key (${key.constraint}) to ${key.toSchema}.${key.toTable}, outside the tenant's schema: ` +
          'an archive of the tenant cannot carry the rows it refers to. Drop or change that constraint to export the tenant.',
      )
    }
  }
  const kept = tables.rows.filter((t) => t.owner === tenant.role || withAccess)
  const columnsOf = new Map<number, string[]>()
  for (const column of columns.rows) columnsOf.set(column.oid, [...(columnsOf.get(column.oid) ?? []), column.name])
  const ordered = dependencyOrder(kept, foreignKeys.rows, tenant.code)

  const ledgerOf = (source: string) => ledger.rows.filter((r) => r.source === source).map(({ name, checksum }) => ({ name, checksum }))
  const archivedModules: ArchivedModule[] = modules.rows.map((m) => ({ id: m.id, enabled: m.enabled, migrations: ledgerOf(m.id) }))
  return {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    plinth: plinthVersion,
    exportedAt: new Date().toISOString(),
    tenant: { code: tenant.code, name: tenant.name, domain: tenant.domain },
    host: { migrations: ledgerOf('host') },
    modules: archivedModules,
    tables: ordered.map((t) => ({ name: t.name, owner: t.owner === tenant.role ? 'module' : 'host', columns: columnsOf.get(t.oid) ?? [] })),
    sequences: sequences.rows,
    ...(keys ? { keys: keys.rows } : {}),
  }
}

/**
 * The tables in an order that loads: each after every table its foreign keys refer to (a table
 * may refer to itself: COPY checks those at the statement's end). Tables that refer to each
 * other in a cycle cannot be loaded one after another, and are refused by name.
 */
function dependencyOrder(tables: CatalogTable[], keys: { from: number; to: number; constraint: string }[], code: string): CatalogTable[] {
  const included = new Set(tables.map((t) => t.oid))
  const needs = new Map(tables.map((t) => [t.oid, new Set<number>()]))
  for (const key of keys) {
    if (key.from !== key.to && included.has(key.from) && included.has(key.to)) needs.get(key.from)!.add(key.to)
  }
  const ordered: CatalogTable[] = []
  const placed = new Set<number>()
  let left = tables
  while (left.length > 0) {
    const ready = left.filter((t) => [...needs.get(t.oid)!].every((oid) => placed.has(oid)))
    if (ready.length === 0) {
      throw problems.tenantNotExportable(
        `The tables ${left.map((t) => t.name).join(', ')} of tenant ${code} refer to each other in a cycle of foreign keys: their rows cannot be loaded one table after another.`,
      )
    }
    for (const table of ready) {
      ordered.push(table)
      placed.add(table.oid)
    }
    left = left.filter((t) => !placed.has(t.oid))
  }
  return ordered
}
