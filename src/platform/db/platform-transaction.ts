// Transactions of the platform's own role: plain ones on `public` (tenants, keys, modules, the
// ledgers) and ones that touch a tenant's schema with nothing of the tenant's on the search_path.
// Tenant transactions, under a tenant's role, are transaction.ts's.
import type pg from 'pg'
import { problems } from '../../problems.ts'
import { runScript, type SchemaServer } from './scripts.ts'
import { quoteIdent } from './sql-names.ts'

export interface TransactionOptions {
  /** What opens it: BEGIN, or BEGIN with the settings and locks that belong in its round trip. */
  begin?: string
  /** On Citus a BEGIN of several statements goes as separate queries, pipelined (scripts.ts). */
  server?: SchemaServer
}

/**
 * Lets `work` end the transaction itself, sending COMMIT or ROLLBACK right behind its last
 * statements (one round trip, not two); the promise settles with that statement. A transaction
 * work did not end commits when work returns.
 */
export interface TransactionEnd {
  commit(): Promise<unknown>
  rollback(): Promise<unknown>
}

/** Takes a client, bounded by the pool's connectionTimeoutMillis; a 503 when none frees up. */
export async function acquireClient(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect()
  } catch (err) {
    throw problems.dbUnavailable(err)
  }
}

/**
 * The host's own work in a tenant's schema (its RBAC tables), as the platform's role: the
 * tenant's role has no privilege on them. `work` names the tenant's tables through `schema`, the
 * quoted schema name: the search_path holds pg_catalog alone, so no function or operator the
 * tenant defined in its schema can stand in for a built-in one (CVE-2018-1058) and run with the
 * platform's privileges.
 */
export function inSchemaTransaction<T>(pool: pg.Pool, schema: string, work: (client: pg.PoolClient, schema: string) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(PLATFORM_SEARCH_PATH)
    return work(client, quoteIdent(schema))
  })
}

/** The search_path of platform work that touches a tenant's schema: built-ins only, temporary objects last. */
export const PLATFORM_SEARCH_PATH = 'SET LOCAL search_path TO pg_catalog, pg_temp'

/**
 * A transaction of the platform's role: platform writes (tenants, modules, roles) and the
 * migration ledgers. BEGIN is sent without waiting: work's first statement travels right behind
 * it (the pool pipelines), and fails with it if it fails; then the reason BEGIN (or a setting or
 * lock sent with it) failed is what is thrown. Any error rolls back.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, end: TransactionEnd) => Promise<T>,
  { begin = 'BEGIN', server = 'postgres' }: TransactionOptions = {},
): Promise<T> {
  const client = await acquireClient(pool)
  let ended: Promise<unknown> | undefined
  const end: TransactionEnd = {
    commit: () => (ended ??= client.query('COMMIT')),
    rollback: () => (ended ??= client.query('ROLLBACK')),
  }
  const begun = runScript(client, begin, server)
  begun.catch(() => {}) // awaited below; never an unhandled rejection
  try {
    const result = await work(client, end)
    await begun
    await end.commit()
    client.release()
    return result
  } catch (err) {
    const beginError = await begun.then(
      () => undefined,
      (e: unknown) => e,
    )
    try {
      await (ended ?? client.query('ROLLBACK')).catch(() => client.query('ROLLBACK'))
      client.release()
    } catch (rollbackError) {
      client.release(rollbackError as Error)
    }
    throw beginError ?? err
  }
}
