// Sending several statements at once. On PostgreSQL a script goes as one query. On Citus each
// statement goes as a query of its own, pipelined (still one round trip): Citus forwards a
// distributed table's DDL to its workers with the query string it came in, and a worker refuses a
// string of several commands; and in a tenant move by logical replication, writes of transactions
// whose BEGIN came in one string with other statements can land in the tenant's old placement
// (placement.ts; the runs that showed it are in docs/benchmarks-history.md, "Why the code is so").
import type pg from 'pg'
import { splitSqlStatements } from './sql-statements.ts'

/** What kind of server tenant schemas are made on: one PostgreSQL, or a Citus coordinator (docs/scale-out.md). */
export type SchemaServer = 'postgres' | 'citus'

/** Sends a script; every query is issued before this returns, so what the caller sends next pipelines behind it. */
export function runScript(client: pg.PoolClient, sql: string, server: SchemaServer): Promise<unknown> {
  if (server === 'postgres') return client.query(sql)
  return settleInOrder(...splitSqlStatements(sql).map((statement) => client.query(statement)))
}

/**
 * Waits for statements sent together on one client and gives their results in order, or throws
 * the first one's error: those after it failed only because it aborted the transaction.
 */
export async function settleInOrder<T extends readonly Promise<unknown>[]>(...sent: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(sent)
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> }
}

