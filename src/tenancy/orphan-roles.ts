// Tenant roles whose database is gone. Role names belong to the PostgreSQL server, databases to
// it as well, but dropping a database drops none of the roles made for it: a tenant role that
// logs in would stay a standing credential. Each tenant role's comment names its database
// (migration public/006), which is how these are found.
import type pg from 'pg'
import { quoteIdent } from '../platform/db/sql-names.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'
import { appendAudit } from '../platform/audit/append.ts'

const TAG = 'plinth tenant role; database '

export interface OrphanRole {
  role: string
  database: string
}

/** The server's plinth tenant roles whose database no longer exists. */
export async function orphanedTenantRoles(pool: pg.Pool): Promise<OrphanRole[]> {
  const { rows } = await pool.query<OrphanRole>(
    `SELECT r.rolname AS role, substr(d.description, $2::int) AS database
       FROM pg_catalog.pg_roles r
       JOIN pg_catalog.pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
      WHERE starts_with(d.description, $1)
        AND substr(d.description, $2::int) NOT IN (SELECT datname FROM pg_catalog.pg_database)
      ORDER BY r.rolname`,
    [TAG, TAG.length + 1],
  )
  return rows
}

/** Drops them, each audited here; with their database gone they own nothing and hold no grant anywhere. */
export async function dropOrphanedTenantRoles(pool: pg.Pool): Promise<OrphanRole[]> {
  const orphans = await orphanedTenantRoles(pool)
  for (const { role, database } of orphans) {
    await inTransaction(pool, async (client) => {
      await client.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`)
      await appendAudit(client, { action: 'tenant-role.dropped', target: role, changes: { database } })
    })
  }
  return orphans
}
