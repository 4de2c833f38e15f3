// The platform admin API under /api/admin, for operators and automation: Bearer PLINTH_ADMIN_TOKEN.
// With no token configured the whole API refuses every call.
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifyInstance } from 'fastify'
import { ROUTING_OPTIONS } from '../fastify-options.ts'
import type { Host } from '../../app/host.ts'
import type { FailureBrake } from '../../access/failure-brake.ts'
import { requireOperatorToken } from '../operator-token.ts'
import { adminAccessRoutes } from './access.ts'
import { adminTenantModuleRoutes } from './tenant-modules.ts'
import { adminTenantRoutes } from './tenants.ts'
import { adminAuditRoutes } from './audit.ts'
import { adminArchiveRoutes } from './archives.ts'
import { actingAs } from '../../platform/audit/actor.ts'

// What an operator sends is taken as sent: a number is never turned into a string, nor a string
// into a number, in a body (query strings and path parameters are text, and are read as such).
const buildValidator = AjvCompiler()
const bodyValidator = buildValidator({}, { customOptions: { ...ROUTING_OPTIONS.ajv.customOptions, coerceTypes: false } })
const textValidator = buildValidator({}, ROUTING_OPTIONS.ajv)

export async function adminRoutes(app: FastifyInstance, { host, authFailures }: { host: Host; authFailures: FailureBrake }) {
  app.setValidatorCompiler((route) => (route.httpPart === 'body' ? bodyValidator(route) : textValidator(route)))
  app.addHook('onRequest', async (request) => {
    requireOperatorToken(request, authFailures, host.config.adminToken, { name: 'admin', unset: 'PLINTH_ADMIN_TOKEN is not set' })
  })
  // The handler runs inside done(): every change it makes is audited as the admin token's, with
  // this request's id and address. After the body is read (a preHandler), whose stream events
  // would not carry the actor.
  app.addHook('preHandler', (request, _reply, done) => {
    actingAs({ kind: 'admin-token', id: null, requestId: request.id, clientAddress: request.ip }, done)
  })
  await app.register(adminTenantRoutes, { prefix: '/tenants', host })
  await app.register(adminTenantModuleRoutes, { prefix: '/tenants', host })
  await app.register(adminAccessRoutes, { prefix: '/tenants', host })
  await app.register(adminArchiveRoutes, { prefix: '/tenants', host })
  await app.register(adminAuditRoutes, { prefix: '/audit', host })
}
