// A migration as a file: SQL read from a folder in file-name order, with its checksum; the public
// ledger's view of which are applied. No transaction and no tenant here (migrations.ts applies
// them), so a command that only checks what is pending loads nothing more.
import { hash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type pg from 'pg'

export interface MigrationFile {
  name: string
  sql: string
  checksum: string
}

/**
 * A module's `migrations/baseline/<name>.sql`: the schema its files up to and including `<name>`
 * make, written afresh. A new tenant gets it in place of those files, and the ledger records each
 * of them as applied, so what follows applies as usual. Tenants that already have some of the files
 * go on file by file. It lets a module's history stay as it was applied (never edited) while new
 * tenants skip what the history did the slow way or the way Citus refuses (docs/modules.md).
 */
export interface Baseline {
  file: MigrationFile
  /** The history files it stands for, in order. */
  covers: MigrationFile[]
}

export class MigrationError extends Error {
  constructor(
    message: string,
    readonly code: 'MIGRATION_EDITED' | 'MIGRATION_FAILED' | 'BASELINE_UNMATCHED',
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'MigrationError'
  }
}

// Taken only to create the ledger on a database that has none: no tenant exists yet then, so no
// module code can hold it. Every later step locks the ledger table itself (lockedTransaction).
/** A command that does not migrate met a database whose public migrations are not all applied. */
export class PendingMigrationsError extends Error {
  constructor(readonly pending: string[]) {
    super(`${pending.length} public migration(s) pending (${pending.join(', ')}): run \`plinth migrate\` first`)
    this.name = 'PendingMigrationsError'
  }
}

export function checksum(sql: string): string {
  return hash('sha256', sql, 'hex')
}

/** Reads `*.sql` in file-name order; a missing folder is an empty list. */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  let names: string[]
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.sql')).sort()
  } catch (err: any) {
    if (err.code === 'ENOENT') return []
    throw err
  }
  return Promise.all(
    names.map(async (name) => {
      const sql = await fs.readFile(path.join(dir, name), 'utf8')
      return { name, sql, checksum: checksum(sql) }
    }),
  )
}

/** The newest baseline in `<dir>/baseline`, if any; it must take the name of one of the history files. */
export async function readBaseline(dir: string, history: MigrationFile[]): Promise<Baseline | undefined> {
  const baselines = await readMigrations(path.join(dir, 'baseline'))
  const newest = baselines.at(-1)
  if (!newest) return undefined
  const last = history.findIndex((f) => f.name === newest.name)
  if (last === -1) {
    throw new MigrationError(
      `baseline/${newest.name} names no migration file: a baseline takes the name of the last file it stands for`,
      'BASELINE_UNMATCHED',
      newest.name,
    )
  }
  return { file: newest, covers: history.slice(0, last + 1) }
}

/** The public files not applied yet; all of them on a database plinth never migrated. */
export async function pendingPublicMigrations(pool: pg.Pool, files: MigrationFile[]): Promise<string[]> {
  const { rows: ledger } = await pool.query<{ exists: boolean }>(`SELECT to_regclass('public.sys_migration') IS NOT NULL AS exists`)
  if (!ledger[0].exists) return files.map((f) => f.name)
  const applied = new Set((await pool.query<{ name: string }>('SELECT name FROM public.sys_migration')).rows.map((r) => r.name))
  return files.map((f) => f.name).filter((name) => !applied.has(name))
}
