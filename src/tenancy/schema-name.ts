// Tenant codes and the schema names derived from them. A schema name is only ever built here,
// from a validated code, and only ever reaches SQL through quoteIdent: never from a request.

export const TENANT_CODE = /^[a-z][a-z0-9-]{1,39}$/
export const SCHEMA_NAME = /^[a-z][a-z0-9_]{0,62}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

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

/** A schema or role name as SQL; it must be one plinth made (a-z, 0-9, _), never anything else. */
export function quoteIdent(name: string): string {
  if (!SCHEMA_NAME.test(name)) throw new Error(`refusing to use ${JSON.stringify(name)} as a schema or role name`)
  return `"${name}"`
}

/** For the few statements that must inline an id (multi-statement simple queries take no parameters). */
export function quoteUuid(id: string): string {
  if (!UUID.test(id)) throw new Error(`not a uuid: ${JSON.stringify(id)}`)
  return `'${id}'`
}
