// The module contract, host API 1.x (shared/design/contract.md), as types. A module needs none of
// them to run (plugin.ts may be plain objects and functions); they are here for authors who want
// their editor to check them: `import type { ModuleDefinition } from '<plinth>/src/host/modules/contract.ts'`.
import type { FastifyRequest } from 'fastify'
import type { TSchema } from 'typebox'
import type { TenantDb } from '../../tenancy/transaction.ts'

/** The host API version this plinth implements; a module's `api` range must accept it. */
export const HOST_API_VERSION = '1.0.0'

export interface ModuleMeta {
  id: string
  name: string
  version: string
  /** A semver range over the host API version, e.g. `1.x`. */
  api: string
}

export interface ModuleDefinition {
  meta: ModuleMeta
  register(ctx: ModuleContext): void | Promise<void>
  /**
   * Optional: a check behind GET /api/plugins/<id>/health (plinth's addition to 1.x; a module
   * without it answers `{ ok: true }` while loaded). Return false or throw to answer 503.
   */
  health?(ctx: ModuleContext): boolean | Promise<boolean>
}

export interface ModuleManifest extends ModuleMeta {
  permissions: string[]
  nav?: {
    basePath: string
    items: { path: string; label: string; permissions?: string[] }[]
  }
}

/** `req` as a handler sees it: Fastify's request with the tenant, principal and db set. */
export type ModuleRequest = FastifyRequest & { db: TenantDb }

export interface ModuleResponse {
  status(code: number): ModuleResponse
  header(name: string, value: string): ModuleResponse
  set(name: string, value: string): ModuleResponse
  json(body: unknown): void
  send(body?: unknown): void
  end(): void
  readonly headersSent: boolean
}

export type Next = (err?: unknown) => void
export type Guard = ((req: ModuleRequest, res: ModuleResponse, next: Next) => void) | ((req: ModuleRequest, res: ModuleResponse) => unknown)
export type Handler = (req: ModuleRequest, res: ModuleResponse, next: Next) => unknown

export interface RouteOptions {
  schema?: { params?: TSchema; querystring?: TSchema; body?: TSchema; headers?: TSchema; response?: Record<number | string, TSchema> }
  summary?: string
  description?: string
  tags?: string[]
}

type RouteMethod = (path: string, ...rest: [RouteOptions | Guard | Handler, ...(Guard | Handler)[]]) => void

export interface ModuleContext {
  router: { get: RouteMethod; post: RouteMethod; put: RouteMethod; patch: RouteMethod; delete: RouteMethod }
  rbac: { require(permission: string): Guard }
  withTenantTx<T>(tenantId: string, work: (db: TenantDb) => Promise<T>): Promise<T>
  log(msg: string, meta?: Record<string, unknown>): void
}
