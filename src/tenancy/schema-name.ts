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

export function quoteIdent(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`refusing to use ${JSON.stringify(schema)} as a schema name`)
  return `"${schema}"`
}

/** For the few statements that must inline an id (multi-statement simple queries take no parameters). */
export function quoteUuid(id: string): string {
  if (!UUID.test(id)) throw new Error(`not a uuid: ${JSON.stringify(id)}`)
  return `'${id}'`
}
