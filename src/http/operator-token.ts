// The operator's credentials on HTTP: the admin token on /api/admin, the metrics token (or the
// admin token) on /metrics. One check for both, brake first.
import type { FastifyRequest } from 'fastify'
import { problems } from '../problems.ts'
import { isAdminToken } from '../access/admin-token.ts'
import type { FailureBrake } from '../access/failure-brake.ts'

/**
 * Throws 401 unless the request carries `Bearer <token>`, and counts the failure toward the brake.
 * A braked address learns nothing, not even whether the token it sends is right (429 first).
 */
export function requireOperatorToken(request: FastifyRequest, brake: FailureBrake, token: string | undefined, what: { name: string; unset: string }) {
  brake.check(request)
  if (isAdminToken(request.headers.authorization, token)) return
  brake.failed(request, { reason: token ? `bad ${what.name} token` : what.unset }, `${what.name} authentication failed`, { operator: true })
  throw problems.unauthorized()
}
