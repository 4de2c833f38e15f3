// Transactions of the platform's own role: plain ones on `public` (tenants, keys, modules, the
// ledgers) and ones that touch a tenant's schema with nothing of the tenant's on the search_path.
// Tenant transactions, under a tenant's role, are transaction.ts's.
import type pg from 'pg'
import { problems } from '../../problems.ts'
import { quoteIdent } from './sql-names.ts'

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
 * A plain transaction on `public` for platform writes (tenants, modules, roles). BEGIN is sent
 * without waiting: work's first statement travels right behind it (the pool pipelines), and fails
 * with it if it fails.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await acquireClient(pool)
  try {
    const begun = client.query('BEGIN')
    begun.catch(() => {}) // awaited below; never an unhandled rejection
    const result = await work(client)
    await begun
    await client.query('COMMIT')
    client.release()
    return result
  } catch (err) {
    try {
      await client.query('ROLLBACK')
      client.release()
    } catch (rollbackError) {
      client.release(rollbackError as Error)
    }
    throw err
  }
}
