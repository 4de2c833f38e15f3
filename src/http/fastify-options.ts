// The Fastify options that decide how routes are matched and validated. The app and the scratch
// instance that checks a module's routes before mounting (modules/mount.ts) must agree on them.
import type { FastifyServerOptions } from 'fastify'

export const ROUTING_OPTIONS = {
  ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: true } },
  // Express's router is not strict about a trailing slash, and modules are written for it.
  routerOptions: { ignoreTrailingSlash: true },
} satisfies FastifyServerOptions
