// Grants and the permissions they give. A grant is exact (`inventory.items.read`) or a pattern:
// `inventory.items.*` (every action on a resource), `inventory.*` (everything a module declares),
// `*` (everything). A grant gives only permissions that a loaded module declares: a grant that
// matches none of them gives nothing (unknown permissions deny).

export const GRANT = /^(\*|[a-z][a-z0-9-]*\.\*|[a-z][a-z0-9-]*\.[a-z][a-z0-9_-]*\.(\*|[a-z][a-z0-9_-]*))$/

export function isGrant(value: unknown): value is string {
  return typeof value === 'string' && GRANT.test(value)
}

export function grantMatches(grant: string, permission: string): boolean {
  if (grant === '*') return true
  if (grant.endsWith('.*')) return permission.startsWith(grant.slice(0, -1))
  return grant === permission
}

/** The declared permissions that some grant matches. */
export function effectivePermissions(grants: Iterable<string>, catalog: Iterable<string>): Set<string> {
  const list = [...grants]
  return new Set([...catalog].filter((permission) => list.some((grant) => grantMatches(grant, permission))))
}

/** Grants that give nothing, because no declared permission matches them. */
export function unknownGrants(grants: Iterable<string>, catalog: Iterable<string>): string[] {
  const declared = [...catalog]
  return [...grants].filter((grant) => !declared.some((permission) => grantMatches(grant, permission)))
}
