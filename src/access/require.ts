// ctx.rbac.require(permission): deny by default. No principal: 401. A principal without the
// permission: 403. Runs as a guard, so it decides before the request takes a pooled client.
import { problems } from '../problems.ts'
import type { Authorized } from './principal.ts'

export function checkPermission(request: Authorized, permission: string) {
  if (!request.principal) throw problems.unauthorized()
  if (!request.principal.permissions.has(permission)) {
    throw problems.forbidden(`This credential does not grant ${permission}.`)
  }
}

/**
 * checkPermission, but a refusal from the cached set is checked once more against the database
 * first (Principal.recheck): a permission granted a moment ago works on the very next request.
 */
export async function checkPermissionFresh(request: Authorized, permission: string) {
  const principal = request.principal
  if (principal?.recheck && !principal.permissions.has(permission)) principal.permissions = await principal.recheck()
  checkPermission(request, permission)
}

const REQUIRED_PERMISSION = Symbol('plinth.requiredPermission')

/** An Express-style guard a module can mount or call; it says which permission it checks. */
export function requirePermission(permission: string) {
  const guard = async function requirePermissionGuard(request: Authorized) {
    checkPermission(request, permission)
  }
  return Object.assign(guard, { [REQUIRED_PERMISSION]: permission })
}

/** The permission a guard made by requirePermission checks; undefined for any other function. */
export function requiredPermission(guard: Function): string | undefined {
  return (guard as { [REQUIRED_PERMISSION]?: string })[REQUIRED_PERMISSION]
}
