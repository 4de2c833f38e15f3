// Bringing one tenant in from an archive, or from another tenant's snapshot (a clone):
//
// 1. The archive's migrations are held against this host's: every module it names must be loaded
//    here, with the archive's files as the first of its own (same names, same checksums).
// 2. The tenant is created through the normal path (its schema, role and grants), each module
//    brought only as far as the archive's ledger: its tables then have the archive's shape.
// 3. Every table's rows are loaded in one transaction, as the tenant's role (COPY FROM; inserts on
//    the embedded database), its plain indexes and foreign keys made again after the rows, as
//    pg_restore does, and every sequence set so the next INSERT on every table succeeds.
// 4. This host's later migrations are applied over the data, as migrate applies them.
// 5. One platform transaction finishes it: modules the archive had disabled disabled, keys
//    re-issued, and, with --replace, the live tenant swapped out and dropped.
// Any failure drops what was created: no tenant, schema, role or row is left behind.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { HttpProblem, problems } from '../../problems.ts'
import { PLATFORM_SEARCH_PATH } from '../../platform/db/platform-transaction.ts'
import { quoteIdent } from '../../platform/db/sql-names.ts'
import type { MigrationSource } from '../migrations.ts'
import type { Tenant } from '../registry.ts'
import { parseCopyRow } from './copy-text.ts'
import { countLines, writableSink, type TableSink } from './format.ts'
import type { ArchivedTable, LedgerEntry, TenantManifest, TenantPlan } from './manifest.ts'

/** Where an import's rows come from: an archive file read a second time, or a live snapshot. */
export interface ArchiveSource {
  manifest: TenantManifest | TenantPlan
  /** Hands each table's rows, in the manifest's order, to the sink `onTable` gives for it. */
  load(onTable: (name: string) => Promise<TableSink>): Promise<void>
}

/**
 * The migration sources a tenant made from `manifest` starts with: the host's and each archived
 * module's files up to where the archive's ledger ends. Refused, naming the module and file, when
 * a module is not loaded here, or is older than the archive's, or its files differ.
 */
export function sourcesAtArchive(manifest: Pick<TenantManifest, 'host' | 'modules'>, available: MigrationSource[]): MigrationSource[] {
  const wanted = [{ id: 'host', migrations: manifest.host.migrations }, ...manifest.modules]
  return wanted.map(({ id, migrations }) => {
    const here = available.find((s) => s.source === id)
    const what = id === 'host' ? "this host's own tenant migrations" : `module ${id}`
    if (!here) throw problems.archiveIncompatible(`The archive holds data of module ${id}, which is not loaded on this host: add it (PLINTH_MODULE_DIRS) and import again.`)
    if (migrations.length > here.files.length) {
      const last = here.files.at(-1)?.name ?? 'none'
      throw problems.archiveIncompatible(
        `The archive was made by a newer ${what}: it has ${migrations.at(-1)!.name} applied, and this host's ${id === 'host' ? 'files end' : 'module ends'} at ${last}. Upgrade it here first.`,
      )
    }
    migrations.forEach((entry: LedgerEntry, i: number) => {
      const file = here.files[i]
      if (file.name !== entry.name) throw problems.archiveIncompatible(`The archive's ${what} applied ${entry.name} where this host's has ${file.name}: they are not the same history.`)
      if (file.checksum !== entry.checksum) throw problems.archiveIncompatible(`The archive's ${what} applied a different ${entry.name} from this host's (the file was edited on one side).`)
    })
    const files = here.files.slice(0, migrations.length)
    // A baseline stands for its first files: usable only when the archive has all of them.
    const baseline = here.baseline && here.baseline.covers.length <= files.length ? here.baseline : undefined
    return { source: id, files, ...(baseline ? { baseline } : {}) }
  })
}

/** A code for a tenant being imported to replace another, until they swap: no one would choose it. */
export function stagingCode(): string {
  return `import-${randomBytes(6).toString('hex')}`
}

interface TargetColumn {
  name: string
  type: string
}

interface TargetTable {
  name: string
  owner: string
  columns: TargetColumn[]
}

/**
 * Loads every table's rows into the new tenant `tenant`, in one transaction on `client` (a
 * connection of its own, not pipelined), and sets its sequences. Nothing of it commits unless all
 * of it does. Each table is emptied first: a migration may have seeded rows the archive also holds.
 * Returns how many rows it loaded.
 */
export async function loadRows(client: pg.Client, tenant: Tenant, source: ArchiveSource, { copy }: { copy: boolean }): Promise<number> {
  const manifest = source.manifest
  const schema = quoteIdent(tenant.schema)
  const asTenant = `SET LOCAL ROLE ${quoteIdent(tenant.role)}`
  await client.query(`BEGIN; ${PLATFORM_SEARCH_PATH}; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0`)
  try {
    const target = await readTargetTables(client, tenant.schema)
    const tables: Pick<ArchivedTable, 'name' | 'owner' | 'columns'>[] = manifest.tables
    const archived = new Map(tables.map((t) => [t.name, t]))
    for (const table of manifest.tables) checkTarget(table, target.get(table.name), tenant.role)
    const named = (tables: { name: string }[]) => tables.map((t) => `${schema}.${pg.escapeIdentifier(t.name)}`).join(', ')
    const moduleTables = [...target.values()].filter((t) => t.owner === tenant.role)
    const hostTables = manifest.tables.filter((t) => t.owner === 'host')
    // Read as the platform (tenant roles may not read the catalog), before the tenant's role drops them.
    const deferred = await deferrableStructure(client, tenant)
    if (moduleTables.length > 0) await client.query(`${asTenant}; TRUNCATE ${named(moduleTables)}`)
    await client.query(deferred.drop)
    if (hostTables.length > 0) await client.query(`SET LOCAL ROLE NONE; TRUNCATE ${named(hostTables)}`)

    let expected = 0
    let loaded = 0
    await source.load(async (name) => {
      const table = archived.get(name)
      if (!table || tables.indexOf(table) !== expected++) throw problems.archiveInvalid(`The archive holds table ${name} where its manifest lists another.`)
      const qualified = `${schema}.${pg.escapeIdentifier(name)}`
      // Triggers the module defined (an updated_at, an audit table) would rewrite what the rows
      // say; its foreign keys, the system's own triggers, are kept and checked.
      await client.query(table.owner === 'module' ? `${asTenant}; ALTER TABLE ${qualified} DISABLE TRIGGER USER` : 'SET LOCAL ROLE NONE')
      const sink = copy ? copySink(client, qualified, table.columns) : insertSink(client, qualified, target.get(name)!.columns.filter((c) => table.columns.includes(c.name)), table.columns)
      return {
        write: (chunk) => {
          loaded += countLines(chunk)
          return sink.write(chunk)
        },
        end: async () => {
          await sink.end()
          if (table.owner === 'module') await client.query(`ALTER TABLE ${qualified} ENABLE TRIGGER USER`)
        },
      }
    })
    if (expected !== manifest.tables.length) throw problems.archiveInvalid('The archive holds fewer tables than its manifest lists.')
    await client.query(`${asTenant}; ${deferred.restore}`)

    // The catalog is read as the platform (tenant roles may not read it); the sequences and views
    // are the tenant's, set and refreshed as its role.
    await client.query('SET LOCAL ROLE NONE')
    const { rows: views } = await client.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'm' ORDER BY relname`, [tenant.schema])
    await setSequences(client, tenant, manifest.sequences)
    for (const view of views) await client.query(`REFRESH MATERIALIZED VIEW ${schema}.${pg.escapeIdentifier(view.name)}`)
    await client.query('COMMIT')
    return loaded
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/**
 * What loading is faster without, as pg_restore loads: the module tables' indexes, their primary
 * keys and unique constraints, and their foreign keys. Dropped before the rows load and made
 * again after, from their definitions, in the load's transaction (as the tenant's role, their
 * owner): one index build per index instead of an insert into it per row, one check per foreign
 * key instead of a lookup per row. A row that breaks a key fails the load as it would have, at
 * the end. Kept in place: a key that a table the tenant does not own refers to, and the keys of a
 * table whose replica identity is an index (dropping them would lose it).
 */
async function deferrableStructure(client: pg.Client, tenant: Tenant): Promise<{ drop: string; restore: string }> {
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relnamespace = $1::regnamespace AND t.relowner = $2::regrole
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
      ORDER BY i.relname`,
    [tenant.schema, tenant.role],
  )
  const { rows: constraints } = await client.query<{ table: string; name: string; kind: 'f' | 'p' | 'u'; definition: string }>(
    `SELECT t.relname AS table, k.conname AS name, k.contype AS kind, pg_get_constraintdef(k.oid) AS definition
       FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
      WHERE t.relnamespace = $1::regnamespace AND t.relowner = $2::regrole
        AND (k.contype = 'f' OR (k.contype IN ('p', 'u') AND t.relreplident <> 'i' AND NOT EXISTS (
              SELECT 1 FROM pg_constraint r JOIN pg_class rt ON rt.oid = r.conrelid
               WHERE r.contype = 'f' AND r.conindid = k.conindid AND rt.relowner <> $2::regrole)))
      ORDER BY t.relname, k.conname`,
    [tenant.schema, tenant.role],
  )
  const keys = constraints.filter((k) => k.kind === 'f')
  const uniques = constraints.filter((k) => k.kind !== 'f')
  const schema = quoteIdent(tenant.schema)
  const table = (name: string) => `${schema}.${pg.escapeIdentifier(name)}`
  const dropConstraint = (k: { table: string; name: string }) => `ALTER TABLE ${table(k.table)} DROP CONSTRAINT ${pg.escapeIdentifier(k.name)}`
  const addConstraint = (k: { table: string; name: string; definition: string }) => `ALTER TABLE ${table(k.table)} ADD CONSTRAINT ${pg.escapeIdentifier(k.name)} ${k.definition}`
  // Foreign keys go first and come back last: they stand on the unique indexes.
  return {
    drop: [
      `SET LOCAL ROLE ${quoteIdent(tenant.role)}`,
      ...keys.map(dropConstraint),
      ...uniques.map(dropConstraint),
      ...indexes.map((i) => `DROP INDEX ${schema}.${pg.escapeIdentifier(i.name)}`),
    ].join(';\n'),
    restore: [...uniques.map(addConstraint), ...indexes.map((i) => i.definition), ...keys.map(addConstraint)].join(';\n') || 'SELECT 1',
  }
}

/** The new tenant's tables, as its migrations made them: owner and (stored, not generated) columns with their types. */
async function readTargetTables(client: pg.Client, schema: string): Promise<Map<string, TargetTable>> {
  const { rows } = await client.query<{ table: string; owner: string; column: string; type: string }>(
    `SELECT c.relname AS table, pg_get_userbyid(c.relowner) AS owner, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY c.relname, a.attnum`,
    [schema],
  )
  const tables = new Map<string, TargetTable>()
  for (const row of rows) {
    const table = tables.get(row.table) ?? { name: row.table, owner: row.owner, columns: [] }
    table.columns.push({ name: row.column, type: row.type })
    tables.set(row.table, table)
  }
  return tables
}

function checkTarget(table: Pick<ArchivedTable, 'name' | 'owner' | 'columns'>, target: TargetTable | undefined, tenantRole: string) {
  const made = 'the migrations the archive names'
  if (!target) throw problems.archiveIncompatible(`The archive holds table ${table.name}, which ${made} do not make here.`)
  if ((target.owner === tenantRole) !== (table.owner === 'module')) throw problems.archiveIncompatible(`The archive's table ${table.name} belongs to the ${table.owner} in the archive, not here.`)
  const missing = table.columns.filter((c) => !target.columns.some((t) => t.name === c))
  if (missing.length > 0) throw problems.archiveIncompatible(`The archive's table ${table.name} has columns ${missing.join(', ')}, which ${made} do not make here.`)
}

function copySink(client: pg.Client, qualified: string, columns: string[]): TableSink {
  return writableSink(client.query(copyFrom(`COPY ${qualified} (${columns.map((c) => pg.escapeIdentifier(c)).join(', ')}) FROM STDIN`)))
}

/** Rows per INSERT on the embedded database: few statements, each a bounded parameter. */
const INSERT_BATCH_BYTES = 1024 * 1024

/**
 * The embedded database's stand-in for COPY FROM: the rows' lines, parsed, inserted a batch at a
 * time, each value cast from its text form to its column's type (what COPY does with it too).
 */
function insertSink(client: pg.Client, qualified: string, targetColumns: TargetColumn[], columns: string[]): TableSink {
  const types = columns.map((name) => targetColumns.find((c) => c.name === name)!.type)
  const select = types.map((type, i) => `(r->>${i})::${type}`).join(', ')
  // OVERRIDING SYSTEM VALUE: an identity column GENERATED ALWAYS takes the archived value, as COPY gives it.
  const sql = `INSERT INTO ${qualified} (${columns.map((c) => pg.escapeIdentifier(c)).join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${select} FROM jsonb_array_elements($1::jsonb) AS r`
  let partial = ''
  let batch: (string | null)[][] = []
  let bytes = 0
  const flush = async () => {
    if (batch.length === 0) return
    const rows = batch
    batch = []
    bytes = 0
    await client.query(sql, [JSON.stringify(rows)])
  }
  return {
    async write(chunk) {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        batch.push(parseCopyRow(line))
        bytes += line.length
      }
      if (bytes >= INSERT_BATCH_BYTES) await flush()
    },
    async end() {
      if (partial !== '') throw problems.archiveInvalid(`A row of table ${qualified} does not end its line.`)
      await flush()
    },
  }
}

/**
 * Every sequence the archive recorded, set to its value there, and never below what its own
 * column (serial or identity) now holds: the next INSERT on every table succeeds, whatever the
 * rows' ids. Sequences keep their names through a table's rename, so they are found by name.
 */
async function setSequences(client: pg.Client, { schema, role }: Tenant, sequences: TenantManifest['sequences']) {
  const { rows: owned } = await client.query<{ sequence: string; table: string; column: string }>(
    `SELECT s.relname AS sequence, t.relname AS table, a.attname AS column
       FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
      WHERE s.relnamespace = $1::regnamespace AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`,
    [schema],
  )
  const { rows: existing } = await client.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'S'`, [schema])
  const recorded = new Map(sequences.map((s) => [s.name, s.value]))
  const q = quoteIdent(schema)
  await client.query(`SET LOCAL ROLE ${quoteIdent(role)}`)
  for (const { name } of existing) {
    const value = recorded.get(name) ?? null
    const column = owned.find((o) => o.sequence === name)
    const sequence = `${q}.${pg.escapeIdentifier(name)}`
    if (column) {
      await client.query(
        `SELECT setval($1::regclass, v) FROM (SELECT GREATEST($2::bigint, max(${pg.escapeIdentifier(column.column)})::bigint) AS v FROM ${q}.${pg.escapeIdentifier(column.table)}) m WHERE v IS NOT NULL`,
        [sequence, value],
      )
    } else if (value !== null) {
      await client.query('SELECT setval($1::regclass, $2::bigint)', [sequence, value])
    }
  }
}

/** An import that cannot go on because the name it would take is taken. */
export function tenantTaken(code: string): HttpProblem {
  return new HttpProblem(409, 'TENANT_EXISTS', `A tenant with the code ${code} already exists; give --replace (replace=true) to replace it with the archive's.`)
}
