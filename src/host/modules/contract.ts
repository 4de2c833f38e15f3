// The module contract, host API 1.x (shared/design/contract.md), as types. A module needs none of
// them to run (plugin.ts may be plain objects and functions); they are here for authors who want
// their editor to check them: `import type { ModuleDefinition } from '<plinth>/src/host/modules/contract.ts'`.
import type { FastifyRequest } from 'fastify'
import type { TSchema } from 'typebox'
import type { TenantDb } from '../../tenancy/transaction.ts'

/** The host API version this plinth implements; a module's `api` range must accept it. */
export const HOST_API_VERSION = '1.1.0'
/**
 * Every host API version this plinth serves: 1.1 only adds to 1.0, so a module written for
 * `1.0.x` runs here too.
 */
export const SERVED_API_VERSIONS = ['1.0.0', HOST_API_VERSION]

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

/** Express's response, as plinth serves it (docs/modules.md lists what it supports). */
export interface ModuleResponse {
  status(code: number): ModuleResponse
  sendStatus(code: number): void
  set(field: string, value: string | number | readonly string[]): ModuleResponse
  set(fields: Record<string, string | number | readonly string[]>): ModuleResponse
  header(field: string, value: string | number | readonly string[]): ModuleResponse
  header(fields: Record<string, string | number | readonly string[]>): ModuleResponse
  get(field: string): string | number | string[] | undefined
  append(field: string, value: string | string[]): ModuleResponse
  type(type: string): ModuleResponse
  contentType(type: string): ModuleResponse
  vary(field: string | string[]): ModuleResponse
  links(links: Record<string, string | string[]>): ModuleResponse
  location(url: string): ModuleResponse
  redirect(url: string): void
  redirect(status: number, url: string): void
  attachment(filename?: string): ModuleResponse
  cookie(name: string, value: unknown, options?: Record<string, unknown>): ModuleResponse
  clearCookie(name: string, options?: Record<string, unknown>): ModuleResponse
  format(handlers: Record<string, (req: ModuleRequest, res: ModuleResponse, next: Next) => void>): ModuleResponse
  json(body: unknown): void
  send(body?: unknown): void
  end(body?: string | Uint8Array): void
  locals: Record<string, unknown>
  statusCode: number
  readonly headersSent: boolean
}

export type Next = (err?: unknown) => void
export type Guard = ((req: ModuleRequest, res: ModuleResponse, next: Next) => void) | ((req: ModuleRequest, res: ModuleResponse) => unknown)
export type Handler = (req: ModuleRequest, res: ModuleResponse, next: Next) => unknown
export type ErrorHandler = (err: unknown, req: ModuleRequest, res: ModuleResponse, next: Next) => unknown

export interface RouteOptions {
  schema?: { params?: TSchema; querystring?: TSchema; body?: TSchema; headers?: TSchema; response?: Record<number | string, TSchema> }
  summary?: string
  description?: string
  tags?: string[]
  /** Open to callers without a credential (a tenant is still needed). Default: deny them (401). */
  public?: boolean
}

type RouteMethod = (path: string, ...rest: [RouteOptions | Guard | Handler, ...(Guard | Handler | ErrorHandler)[]]) => ModuleRouter
type RouteOfPath = { [M in 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options' | 'all']: (...rest: [RouteOptions | Guard | Handler, ...(Guard | Handler | ErrorHandler)[]]) => RouteOfPath }

/** Express's Router, as plinth serves it. */
export interface ModuleRouter {
  get: RouteMethod
  post: RouteMethod
  put: RouteMethod
  patch: RouteMethod
  delete: RouteMethod
  head: RouteMethod
  options: RouteMethod
  all: RouteMethod
  use(...fns: (Guard | ErrorHandler)[]): ModuleRouter
  use(path: string, ...fns: (Guard | ErrorHandler)[]): ModuleRouter
  route(path: string): RouteOfPath
  param(name: string, fn: (req: ModuleRequest, res: ModuleResponse, next: Next, value: string, name: string) => unknown): ModuleRouter
}

/** A tenant, as a module sees it. */
export interface ModuleTenant {
  id: string
  code: string
  name: string
  schema: string
}

export interface ModuleContext {
  router: ModuleRouter
  rbac: { require(permission: string): Guard }
  /** Inside a request: joins its transaction (a SAVEPOINT), for its tenant only. Elsewhere: a transaction of its own. */
  withTenantTx<T>(tenantIdOrCode: string, work: (db: TenantDb) => Promise<T>): Promise<T>
  /** Host API 1.1: the active tenants that have this module enabled, for background work. */
  tenants(): Promise<ModuleTenant[]>
  log(msg: string, meta?: Record<string, unknown>): void
}
