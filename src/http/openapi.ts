// The OpenAPI 3.1 document of every route's schema, grouped by module (tag = module id), at
// /docs/json, and Swagger UI at /docs. The UI's assets come from the npm package: nothing is
// fetched at run time.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ModuleRecord } from '../modules/discovery.ts'
import { operationIds } from './operation-ids.ts'

/** plinth's one error shape (problems.ts), as every error response documents it. */
const Problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'instance', 'error', 'requestId'],
  properties: {
    type: { type: 'string', examples: ['urn:plinth:error:VALIDATION_FAILED'] },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    error: { type: 'string', description: 'The machine-readable code (README, "Error codes")' },
    requestId: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } })

const TENANT_HEADER = {
  name: 'x-tenant',
  in: 'header',
  required: false,
  description: "The tenant's code. Needed unless the request is made to the tenant's own domain.",
  schema: { type: 'string' },
}

interface DocumentedRoute {
  schema?: Record<string, any>
  url: string
  route: { method: string | string[]; config?: { module?: string; public?: boolean; permissions?: string[] } }
}

/**
 * Every route's document: a module route's as documentModuleRoute writes it, an open host route
 * (health, the index, the module list) with `security: []` so that a client does not send, or
 * refuse to call without, a credential the route never asks for. Parameters and fields with a
 * default are not required of the caller, whatever the schema's `required` says: Fastify fills
 * them in (a TypeBox `Type.Integer({ default: 20 })` is required in TypeScript, optional on the wire).
 */
function routeDocumenter() {
  const operationId = operationIds()
  return function documentRoute(route: DocumentedRoute) {
    const { schema = {}, url } = route
    const config = route.route.config ?? {}
    // Open: a module's /health (plinth's or the module's own), and the host's routes marked public.
    const open = MODULE_HEALTH.test(url) || (!config.module && config.public === true)
    const documented = open ? { ...schema, security: [] } : config.module ? documentModuleRoute(route) : documentHostRoute(route)
    const methods = [route.route.method].flat().filter((m) => m !== 'HEAD')
    return { url, schema: { ...documented, ...optionalDefaults(documented), operationId: operationId(methods[0] ?? 'GET', url, schema.operationId) } }
  }
}

const MODULE_HEALTH = /^\/api\/plugins\/[^/]+\/health$/

/** The querystring, headers and body schemas with properties that have a default dropped from `required`. */
function optionalDefaults(schema: Record<string, any>) {
  const changed: Record<string, unknown> = {}
  for (const part of ['querystring', 'headers', 'body'] as const) {
    const object = schema[part]
    if (!Array.isArray(object?.required)) continue
    const required = object.required.filter((name: string) => object.properties?.[name]?.default === undefined)
    if (required.length !== object.required.length) changed[part] = { ...object, required }
  }
  return changed
}

/** The responses a route declares, with a 200 when it declares no 2xx, and `add` for the problems it may answer. */
function responsesOf(schema: Record<string, any>) {
  const responses: Record<string, unknown> = { ...(schema.response ?? {}) }
  if (!Object.keys(responses).some((status) => /^2/.test(status))) responses['200'] = { description: 'OK' }
  const add = (status: string, description: string) => {
    responses[status] ??= problem(description)
  }
  return { responses, add }
}

/**
 * A host route behind a credential (the admin API with the admin token; /api/me and /api/nav with
 * a tenant's), with every problem it can answer. Documentation only, as for module routes.
 */
function documentHostRoute({ schema = {}, url, route }: DocumentedRoute) {
  const admin = url.startsWith('/api/admin')
  const writes = [route.method].flat().some((m) => m !== 'GET' && m !== 'HEAD')
  const { responses, add } = responsesOf(schema)
  add('400', admin ? 'VALIDATION_FAILED (errors names each field), MALFORMED_JSON, INVALID_VALUE or BAD_REQUEST.' : 'TENANT_REQUIRED: no x-tenant header and no tenant domain.')
  add('401', admin ? 'UNAUTHORIZED: no admin token, or another.' : 'UNAUTHORIZED: no credential, or one that is not valid for this tenant.')
  if (!admin) add('403', 'TENANT_SUSPENDED, or TENANT_MISMATCH: the credential belongs to another tenant.')
  add('404', admin ? 'TENANT_NOT_FOUND, or NOT_FOUND (a key, role or module of that tenant).' : 'TENANT_NOT_FOUND.')
  if (writes) {
    add('409', 'CONFLICT: it exists already, or is still in use.')
    add('413', 'BODY_TOO_LARGE.')
    add('415', 'UNSUPPORTED_MEDIA_TYPE: send application/json (UTF-8).')
    add('422', 'INVALID_VALUE or CHECK_VIOLATION: what was asked breaks a rule.')
  }
  add('429', 'TOO_MANY_FAILED_ATTEMPTS: too many failed authentications from this address (Retry-After).')
  add('500', 'INTERNAL_ERROR: the log has why.')
  add('503', 'DB_UNAVAILABLE, NOT_READY or LOCK_TIMEOUT (Retry-After).')
  return { ...schema, response: responses }
}

/**
 * A module route's operation, as a caller needs it: the permission it requires, its credential
 * (none on a public route), the x-tenant header, and every status plinth can answer it with.
 * Documentation only: the route's own schema, which Fastify validates with, is left as it is.
 */
function documentModuleRoute({ schema = {}, route }: DocumentedRoute) {
  const config = route.config ?? {}
  const permissions = config.permissions ?? []
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  const writes = methods.some((m) => m !== 'GET' && m !== 'HEAD')
  const validates = Boolean(schema.body || schema.params || schema.querystring || schema.headers)
  const { responses, add } = responsesOf(schema)
  if (validates || writes) add('400', 'VALIDATION_FAILED (errors names each field), MALFORMED_JSON, INVALID_VALUE, BAD_REQUEST, or TENANT_REQUIRED.')
  else add('400', 'TENANT_REQUIRED: no x-tenant header and no tenant domain.')
  if (!config.public) add('401', 'No credential, or one that is not valid for this tenant (UNAUTHORIZED).')
  add('403', permissions.length > 0 ? `FORBIDDEN: the credential does not grant ${permissions.join(' and ')}; TENANT_SUSPENDED; TENANT_MISMATCH.` : 'TENANT_SUSPENDED, or TENANT_MISMATCH: the credential belongs to another tenant.')
  add('404', 'TENANT_NOT_FOUND, MODULE_NOT_ENABLED for this tenant, or NOT_FOUND.')
  if (writes) {
    add('409', 'CONFLICT: the write clashes with data already there (a unique or foreign key).')
    add('413', 'BODY_TOO_LARGE.')
    add('415', 'UNSUPPORTED_MEDIA_TYPE: send application/json (UTF-8).')
    add('422', 'MISSING_VALUE or CHECK_VIOLATION: the record would break a rule of its table.')
  }
  add('429', 'TOO_MANY_FAILED_ATTEMPTS: too many failed authentications from this address (Retry-After).')
  add('500', 'INTERNAL_ERROR: the module failed; the log has why.')
  add('503', 'MODULE_UNAVAILABLE for this tenant, DB_UNAVAILABLE, NOT_READY or LOCK_TIMEOUT (Retry-After).')
  add('504', 'STATEMENT_TIMEOUT: the database took longer than DB_STATEMENT_TIMEOUT_MS.')
  const needs = permissions.length > 0 ? `Requires permission ${permissions.map((p) => `\`${p}\``).join(' and ')}.` : config.public ? 'Public: no credential needed.' : 'Requires a credential of the tenant (no particular permission).'
  return {
    ...schema,
    description: [schema.description, needs].filter(Boolean).join('\n\n'),
    security: config.public ? [{}, { bearer: [] }] : [{ bearer: [] }],
    'x-permissions': permissions,
    response: responses,
  }
}

/** Adds the x-tenant header to every module operation but /health (swagger's transform cannot add parameters). */
function addTenantHeader({ openapiObject }: { openapiObject: Record<string, any> }) {
  for (const [path, item] of Object.entries<Record<string, any>>(openapiObject.paths ?? {})) {
    if (!path.startsWith('/api/plugins/') || path.endsWith('/health')) continue
    for (const operation of Object.values<Record<string, any>>(item)) {
      operation.parameters = [...(operation.parameters ?? []).filter((p: { name: string }) => p.name !== 'x-tenant'), TENANT_HEADER]
    }
  }
  return openapiObject
}

async function openApiPlugin(app: FastifyInstance, { modules }: { modules: readonly ModuleRecord[] }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'plinth',
        version: '1.0.0',
        description:
          'Module routes live under /api/plugins/<id>; name the tenant with the x-tenant header (or call its domain) and authenticate with Authorization: Bearer <API key or JWT>. Errors are application/problem+json.',
      },
      tags: [
        ...modules.filter((m) => m.status === 'loaded').map((m) => ({ name: m.id, description: `${m.name} ${m.version}` })),
        { name: 'admin', description: 'Platform administration (Bearer PLINTH_ADMIN_TOKEN)' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: "An API key of the tenant (plinth key create), or a JWT (README, 'JWT')" } },
        schemas: { Problem: Problem as never },
      },
      security: [{ bearer: [] }],
    },
    transform: routeDocumenter() as never,
    transformObject: addTenantHeader as never,
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}

export const openApi = fp(openApiPlugin, { name: 'plinth-openapi' })
