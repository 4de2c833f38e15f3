// Names plinth made (schemas, roles) and ids, as SQL text: for the statements that cannot take them
// as parameters. Anything but the shapes plinth makes is refused, never quoted.

export const SCHEMA_NAME = /^[a-z][a-z0-9_]{0,62}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

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
