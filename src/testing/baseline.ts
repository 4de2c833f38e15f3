// Checks a module's baseline (migrations/baseline/<name>.sql) against its history: the files it
// stands for are applied to one fresh schema and the baseline to another, in the same database,
// and what each made is compared: tables and their columns in order, constraints, indexes,
// sequences, views, triggers and functions, by name and definition. A baseline that drifts from
// its history would give new tenants a different schema from old ones; this finds it before they do.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import type pg from 'pg'
import { readBaseline, readMigrations } from '../tenancy/migration-files.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'

/** What differs between the schema a module's history makes and the one its baseline makes; [] when they agree or it has no baseline. */
export async function baselineDifferences(pool: pg.Pool, moduleDir: string): Promise<string[]> {
  const dir = path.join(moduleDir, 'migrations')
  const baseline = await readBaseline(dir, await readMigrations(dir))
  if (!baseline) return []
  const suffix = randomBytes(4).toString('hex')
  const fromHistory = `plinth_history_${suffix}`
  const fromBaseline = `plinth_baseline_${suffix}`
  try {
    await makeSchema(pool, fromHistory, baseline.covers.map((f) => f.sql))
    await makeSchema(pool, fromBaseline, [baseline.file.sql])
    const history = await schemaShape(pool, fromHistory)
    const made = await schemaShape(pool, fromBaseline)
    return [
      ...history.filter((line) => !made.includes(line)).map((line) => `only the history makes: ${line}`),
      ...made.filter((line) => !history.includes(line)).map((line) => `only baseline/${baseline.file.name} makes: ${line}`),
    ]
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(fromHistory)} CASCADE; DROP SCHEMA IF EXISTS ${quoteIdent(fromBaseline)} CASCADE`).catch(() => {})
  }
}

async function makeSchema(pool: pg.Pool, schema: string, scripts: string[]) {
  await pool.query(`CREATE SCHEMA ${quoteIdent(schema)}`)
  await inTransaction(
    pool,
    async (client) => {
      for (const sql of scripts) await client.query(sql)
    },
    { begin: `BEGIN; SET LOCAL search_path TO ${quoteIdent(schema)}, public` },
  )
}

// One line per thing the schema holds, with the schema's own name taken out of definitions.
const SHAPE = `
  SELECT format('relation %s (%s)', c.relname, c.relkind) AS line FROM pg_class c
   WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT format('column %s.%s #%s %s%s%s', c.relname, a.attname,
                row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('constraint %s on %s: %s', con.conname, c.relname, pg_get_constraintdef(con.oid))
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
   WHERE con.connamespace = $1::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = $1::regnamespace
  UNION ALL
  SELECT 'view ' || c.relname || ': ' || pg_get_viewdef(c.oid) FROM pg_class c
   WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(tg.oid) FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
   WHERE c.relnamespace = $1::regnamespace AND NOT tg.tgisinternal
  UNION ALL
  SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
  ORDER BY 1`

async function schemaShape(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(SHAPE, [schema])
  return rows.map((r) => r.line.replaceAll(`${schema}.`, '').replaceAll(schema, '<schema>'))
}
