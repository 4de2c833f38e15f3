// ctx.rbac.require(permission): deny by default. No principal: 401. A principal without the
// permission: 403. Runs as a guard, so it decides before the request takes a pooled client.
import type { FastifyRequest } from 'fastify'
import { problems } from '../host/errors.ts'

export function requirePermission(permission: string) {
  return async function requirePermissionGuard(request: FastifyRequest) {
    if (!request.principal) throw problems.unauthorized()
    if (!request.principal.permissions.has(permission)) {
      throw problems.forbidden(`This credential does not grant ${permission}.`)
    }
  }
}
