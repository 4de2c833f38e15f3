// `plinth/module`: what a module author imports. Types only, and defineModule, which returns what
// it is given: a module that uses it costs nothing at run time, and one that does not runs the same.
//
//   import { defineModule } from 'plinth/module'
//   export default defineModule({ meta: {...}, register(ctx) { ctx.router.get(...) } })
//
// Inside register, `ctx` is typed; a route's `req.params`, `req.query` and `req.body` are typed
// from its TypeBox schema; `req.tenant` is always set.
import type { ModuleDefinition, ModuleManifest } from './contract.ts'

export type {
  EnqueueOptions,
  ErrorHandler,
  Guard,
  JobOptions,
  Handler,
  Handlers,
  ModuleContext,
  ModuleDefinition,
  ModuleJob,
  ModuleJobs,
  ModuleManifest,
  ModuleMeta,
  ModuleRequest,
  ModuleResponse,
  ModuleRouter,
  ModuleSpans,
  ModuleTenant,
  Next,
  RouteOptions,
  RouteSchema,
} from './contract.ts'
export type { TenantDb } from '../tenancy/transaction.ts'

/** A module's default export (plugin.ts), typed. */
export function defineModule<const M extends ModuleDefinition>(definition: M): M {
  return definition
}

/** A module's manifest (module.config.ts), typed. */
export function defineManifest<const M extends ModuleManifest>(manifest: M): M {
  return manifest
}
