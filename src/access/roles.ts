// Roles, their grants and the principals holding them, in each tenant's own schema (tables from
// migrations/tenant/001_rbac.sql). Every change is recorded for the change feed (topic `rbac`,
// key = tenant id), so every instance drops that tenant's cached permission sets.
import type pg from 'pg'
import { HttpProblem } from '../problems.ts'
import { recordChange, type ChangeFeed } from '../platform/db/changes.ts'
import type { Tenant } from '../tenancy/registry.ts'
import { inSchemaTransaction } from '../platform/db/platform-transaction.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'
import { appendAudit, type AuditEvent } from '../platform/audit/append.ts'
import { isGrant, unknownGrants } from './permissions.ts'

export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,62}$/
export const PRINCIPAL_ID = /^(key:[a-z0-9]{12}|user:[^\s]{1,200})$/

export interface RoleView {
  name: string
  description: string
  grants: string[]
  principals: string[]
  /** Grants that give nothing: no loaded module declares a permission they match. */
  unknownGrants: string[]
}

function invalid(path: string, message: string) {
  return new HttpProblem(400, 'VALIDATION_FAILED', 'The request is invalid.', { errors: [{ path, message }] })
}

export class Roles {
  constructor(
    private readonly pool: pg.Pool,
    private readonly catalog: () => string[],
    private readonly changes?: ChangeFeed,
  ) {}

  async list(tenant: Tenant): Promise<RoleView[]> {
    return inSchemaTransaction(this.pool, tenant.schema, async (client, s) => {
      const { rows } = await client.query(`
        SELECT r.name, r.description,
               coalesce((SELECT array_agg(g.permission ORDER BY g.permission) FROM ${s}.plinth_role_grant g WHERE g.role_id = r.id), '{}') AS grants,
               coalesce((SELECT array_agg(p.principal_id ORDER BY p.principal_id) FROM ${s}.plinth_principal_role p WHERE p.role_id = r.id), '{}') AS principals
          FROM ${s}.plinth_role r ORDER BY r.name`)
      return rows.map((r) => ({ ...r, unknownGrants: unknownGrants(r.grants, this.catalog()) }))
    })
  }

  async create(tenant: Tenant, name: string, description = '') {
    if (!ROLE_NAME.test(name)) throw invalid('/name', 'must be 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter')
    const event = { action: 'role.created', target: name, changes: { description } }
    await this.write(tenant, event, (c, s) => c.query(`INSERT INTO ${s}.plinth_role (name, description) VALUES ($1, $2)`, [name, description])).catch((err) => {
      if (err?.code === '23505') throw new HttpProblem(409, 'ROLE_EXISTS', `Role ${name} already exists.`)
      throw err
    })
  }

  async remove(tenant: Tenant, name: string) {
    await this.write(tenant, { action: 'role.deleted', target: name }, async (c, s) => {
      const { rowCount } = await c.query(`DELETE FROM ${s}.plinth_role WHERE name = $1`, [name])
      if (!rowCount) throw roleNotFound(name)
    })
  }

  async grant(tenant: Tenant, role: string, permission: string) {
    if (!isGrant(permission)) throw invalid('/permission', 'must be <module>.<resource>.<action>, <module>.<resource>.*, <module>.* or *')
    await this.write(tenant, { action: 'role.granted', target: role, changes: { permission } }, async (c, s) => {
      const { rowCount } = await c.query(
        `INSERT INTO ${s}.plinth_role_grant (role_id, permission) SELECT id, $2 FROM ${s}.plinth_role WHERE name = $1 ON CONFLICT DO NOTHING`,
        [role, permission],
      )
      if (!rowCount) await this.assertRole(c, s, role)
    })
  }

  async revoke(tenant: Tenant, role: string, permission: string) {
    await this.write(tenant, { action: 'role.revoked', target: role, changes: { permission } }, async (c, s) => {
      await this.assertRole(c, s, role)
      await c.query(`DELETE FROM ${s}.plinth_role_grant g USING ${s}.plinth_role r WHERE g.role_id = r.id AND r.name = $1 AND g.permission = $2`, [role, permission])
    })
  }

  async assign(tenant: Tenant, role: string, principalId: string) {
    if (!PRINCIPAL_ID.test(principalId)) throw invalid('/principal', 'must be key:<key id> or user:<subject>')
    await this.write(tenant, { action: 'role.assigned', target: role, changes: { principal: principalId } }, (c, s) => this.assignWith(c, s, role, principalId))
  }

  /** Assigns inside a transaction the caller holds (a key created with its roles); `s` is the quoted schema. */
  async assignWith(client: pg.PoolClient, s: string, role: string, principalId: string) {
    const { rowCount } = await client.query(
      `INSERT INTO ${s}.plinth_principal_role (principal_id, role_id) SELECT $2, id FROM ${s}.plinth_role WHERE name = $1 ON CONFLICT DO NOTHING`,
      [role, principalId],
    )
    if (!rowCount) await this.assertRole(client, s, role)
  }

  async unassign(tenant: Tenant, role: string, principalId: string) {
    await this.write(tenant, { action: 'role.unassigned', target: role, changes: { principal: principalId } }, async (c, s) => {
      await this.assertRole(c, s, role)
      await c.query(`DELETE FROM ${s}.plinth_principal_role p USING ${s}.plinth_role r WHERE p.role_id = r.id AND r.name = $1 AND p.principal_id = $2`, [role, principalId])
    })
  }

  /**
   * Replaces the roles, grants and holders in schema `to` with those of schema `from`, in the
   * caller's transaction (whose search_path holds only pg_catalog): a tenant replaced by an import
   * hands its access on. The tables have the same columns: both tenants are at the host's migrations.
   */
  async copyWith(client: pg.PoolClient, from: string, to: string) {
    const [f, t] = [quoteIdent(from), quoteIdent(to)]
    await client.query(`TRUNCATE ${t}.plinth_role, ${t}.plinth_role_grant, ${t}.plinth_principal_role;
      INSERT INTO ${t}.plinth_role SELECT * FROM ${f}.plinth_role;
      INSERT INTO ${t}.plinth_role_grant SELECT * FROM ${f}.plinth_role_grant;
      INSERT INTO ${t}.plinth_principal_role SELECT * FROM ${f}.plinth_principal_role`)
  }

  /**
   * Keys re-issued by an import hold what the archived keys held: each `key:<old>` holder renamed
   * to its new id; the holdings of keys not re-issued (revoked ones) dropped. In the caller's transaction.
   */
  async renameKeyHoldersWith(client: pg.PoolClient, schema: string, renamed: Map<string, string>) {
    const s = quoteIdent(schema)
    const from = [...renamed.keys()].map((id) => `key:${id}`)
    const to = [...renamed.values()].map((id) => `key:${id}`)
    await client.query(
      `WITH renamed AS (SELECT * FROM unnest($1::text[], $2::text[]) AS r(old, new))
       UPDATE ${s}.plinth_principal_role p SET principal_id = r.new FROM renamed r WHERE p.principal_id = r.old`,
      [from, to],
    )
    await client.query(`DELETE FROM ${s}.plinth_principal_role WHERE starts_with(principal_id, 'key:') AND NOT principal_id = ANY($1::text[])`, [to])
  }

  private async assertRole(client: pg.PoolClient, s: string, role: string) {
    const { rowCount } = await client.query(`SELECT 1 FROM ${s}.plinth_role WHERE name = $1`, [role])
    if (!rowCount) throw roleNotFound(role)
  }

  /** One transaction on the tenant's schema, with the change recorded and `event` audited in it. */
  private async write<T>(tenant: Tenant, event: Omit<AuditEvent, 'tenant'>, work: (client: pg.PoolClient, schema: string) => Promise<T>): Promise<T> {
    const result = await inSchemaTransaction(this.pool, tenant.schema, async (client, schema) => {
      const done = await work(client, schema)
      await recordChange(client, 'rbac', tenant.id)
      await appendAudit(client, { ...event, tenant: tenant.code })
      return done
    })
    await this.changes?.announce('rbac', tenant.id)
    return result
  }
}

function roleNotFound(name: string) {
  return new HttpProblem(404, 'ROLE_NOT_FOUND', `No role is named ${JSON.stringify(name)}.`)
}
