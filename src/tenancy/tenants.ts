// Tenant lifecycle: create (schema + tenant migrations, all or nothing), list, suspend, resume and
// drop. The CLI and the admin API both call this; neither talks to sys_tenant on its own.
import type pg from 'pg'
import { HttpProblem, type FieldError } from '../problems.ts'
import { recordChange, type ChangeFeed } from './changes.ts'
import { applyTenantFilesInTransaction, type MigrationSource } from './migrations.ts'
import type { Tenant } from './registry.ts'
import { isTenantCode, quoteIdent, roleForSchema, schemaForCode } from './schema-name.ts'
import { inTransaction } from './transaction.ts'

export interface NewTenant {
  code: string
  name: string
  domain?: string | null
}

export interface TenantsOptions {
  pool: pg.Pool
  /** The migrations a new tenant gets: the host's own first, then each default module's. */
  migrationsForNewTenant: () => MigrationSource[]
  changes?: ChangeFeed
  /** Host names the API serves every tenant on (PLINTH_API_HOSTS): no tenant may claim one. */
  reservedHosts?: readonly string[]
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

const SELECT_TENANT = `id, code, name, domain, schema_name AS schema, role_name AS role, status, created_at AS "createdAt"`

/** An IPv4 literal, or any name whose last label is all digits: no tenant's host name. */
const IP_LITERAL = /(^|\.)\d+$/

export function validateNewTenant(input: Partial<NewTenant>, reservedHosts: readonly string[] = []): FieldError[] {
  const errors: FieldError[] = []
  if (!isTenantCode(input.code)) {
    errors.push({ path: '/code', message: 'must be 2 to 40 characters of a-z, 0-9 and -, starting with a letter' })
  }
  if (typeof input.name !== 'string' || input.name.trim().length === 0 || input.name.length > 200) {
    errors.push({ path: '/name', message: 'must be 1 to 200 characters' })
  }
  if (input.domain != null && (typeof input.domain !== 'string' || !DOMAIN.test(input.domain))) {
    errors.push({ path: '/domain', message: 'must be a lowercase host name such as acme.example.com' })
  } else if (input.domain != null && IP_LITERAL.test(input.domain)) {
    errors.push({ path: '/domain', message: 'must be a host name, not an IP address' })
  } else if (input.domain != null && reservedHosts.includes(input.domain)) {
    // Every tenant's callers reach the API on these: a tenant that claimed one would be every request's.
    errors.push({ path: '/domain', message: `must not be a host the API itself serves on (${reservedHosts.join(', ')})` })
  }
  return errors
}

export class Tenants {
  constructor(private readonly options: TenantsOptions) {}

  async create(input: NewTenant): Promise<Tenant> {
    const errors = validateNewTenant(input, this.options.reservedHosts)
    if (errors.length > 0) throw new HttpProblem(400, 'VALIDATION_FAILED', 'The tenant is invalid.', { errors })
    const schema = schemaForCode(input.code)
    const sources = this.options.migrationsForNewTenant()
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const role = roleForSchema(await tenantRolePrefix(client), schema)
      const { rows } = await client.query<Tenant>(
        `INSERT INTO public.sys_tenant (code, name, domain, schema_name, role_name) VALUES ($1, $2, $3, $4, $5) RETURNING ${SELECT_TENANT}`,
        [input.code, input.name.trim(), input.domain ?? null, schema, role],
      )
      const created = rows[0]
      // A schema or role left behind by something else is not ours to take over. The login role
      // joins the tenant's role so that it may SET ROLE to it without being a superuser.
      await client.query(`CREATE SCHEMA ${quoteIdent(schema)};
        CREATE ROLE ${quoteIdent(role)} NOLOGIN;
        GRANT ${quoteIdent(role)} TO CURRENT_USER;
        GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`)
      for (const source of sources) await applyTenantFilesInTransaction(client, created, source)
      const modules = sources.filter((s) => s.source !== 'host').map((s) => s.source)
      if (modules.length > 0) {
        await client.query(
          'INSERT INTO public.sys_tenant_plugin (tenant_id, plugin_id) SELECT $1, unnest($2::text[])',
          [created.id, modules],
        )
      }
      await recordChange(client, 'tenant', created.id)
      return created
    }).catch((err) => {
      if (err?.code === '23505' || err?.code === '42P06' || err?.code === '42710') {
        const field = /domain/.test(err.constraint ?? err.detail ?? '') ? 'domain' : 'code'
        throw new HttpProblem(409, 'TENANT_EXISTS', `A tenant with this ${field} already exists.`)
      }
      throw err
    })
    await this.options.changes?.announce('tenant', tenant.id)
    return normalise(tenant)
  }

  async list(): Promise<Tenant[]> {
    const { rows } = await this.options.pool.query<Tenant>(`SELECT ${SELECT_TENANT} FROM public.sys_tenant ORDER BY code`)
    return rows.map(normalise)
  }

  async get(code: string): Promise<Tenant> {
    const { rows } = await this.options.pool.query<Tenant>(`SELECT ${SELECT_TENANT} FROM public.sys_tenant WHERE code = $1`, [code])
    if (!rows[0]) throw notFound(code)
    return normalise(rows[0])
  }

  suspend(code: string) {
    return this.setStatus(code, 'suspended')
  }

  resume(code: string) {
    return this.setStatus(code, 'active')
  }

  /** Drops the tenant's schema and every row about it. `confirm` must repeat the code. */
  async drop(code: string, confirm: string | undefined): Promise<Tenant> {
    if (confirm !== code) {
      throw new HttpProblem(400, 'CONFIRMATION_REQUIRED', `Dropping a tenant deletes all its data; confirm by repeating its code (${code}).`)
    }
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const { rows } = await client.query<Tenant>(`DELETE FROM public.sys_tenant WHERE code = $1 RETURNING ${SELECT_TENANT}`, [code])
      if (!rows[0]) throw notFound(code)
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(rows[0].schema)} CASCADE; DROP ROLE IF EXISTS ${quoteIdent(rows[0].role)}`)
      await recordChange(client, 'tenant', rows[0].id)
      return rows[0]
    })
    await this.options.changes?.announce('tenant', tenant.id)
    return normalise(tenant)
  }

  private async setStatus(code: string, status: Tenant['status']): Promise<Tenant> {
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const { rows } = await client.query<Tenant>(
        `UPDATE public.sys_tenant SET status = $2 WHERE code = $1 RETURNING ${SELECT_TENANT}`,
        [code, status],
      )
      if (!rows[0]) throw notFound(code)
      await recordChange(client, 'tenant', rows[0].id)
      return rows[0]
    })
    await this.options.changes?.announce('tenant', tenant.id)
    return normalise(tenant)
  }
}

/** This database's prefix for tenant role names (migration public/004). */
async function tenantRolePrefix(client: pg.PoolClient): Promise<string> {
  const { rows } = await client.query<{ value: string }>(`SELECT value FROM public.sys_setting WHERE name = 'tenant_role_prefix'`)
  return rows[0].value
}

function notFound(code: string) {
  return new HttpProblem(404, 'TENANT_NOT_FOUND', `No tenant has the code ${JSON.stringify(code)}.`)
}

function normalise(tenant: Tenant): Tenant {
  return { ...tenant, createdAt: new Date(tenant.createdAt).toISOString() }
}
