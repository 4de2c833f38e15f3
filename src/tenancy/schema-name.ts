// Tenant codes and the schema names derived from them. A schema name is only ever built here,
// from a validated code, and only ever reaches SQL through quoteIdent: never from a request.
import { quoteIdent } from '../platform/db/sql-names.ts'

export const TENANT_CODE = /^[a-z][a-z0-9-]{1,39}$/

export function isTenantCode(code: unknown): code is string {
  return typeof code === 'string' && TENANT_CODE.test(code)
}

/** `acme-eu` -> `t_acme_eu`. Codes hold no `_`, so two codes never share a schema. */
export function schemaForCode(code: string): string {
  if (!isTenantCode(code)) throw new Error(`not a tenant code: ${JSON.stringify(code)}`)
  return `t_${code.replaceAll('-', '_')}`
}

/** The tenant's database role: this database's prefix (public.sys_setting) and the schema name. */
export function roleForSchema(prefix: string, schema: string): string {
  return quoteIdent(`${prefix}_${schema}`).slice(1, -1)
}
