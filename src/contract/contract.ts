// The module contract, host API 1.x (docs/contract.md), as types. A module needs none of them to
// run (plugin.ts may be plain objects and functions); authors import them, with defineModule, from
// `plinth/module` (src/module.ts) so their editor and tsc check handlers against their schemas.
import type { FastifyRequest } from 'fastify'
import type { Static, TSchema } from 'typebox'
import type { TenantDb } from '../tenancy/transaction.ts'
import type { EnqueueOptions } from '../jobs/enqueue.ts'

/** The host API version this plinth implements; a module's `api` range must accept it. */
export const HOST_API_VERSION = '1.2.0'

/** A module id: the folder's name, the manifest's id, the segment of /api/plugins/<id>. */
export const MODULE_ID = '^[a-z][a-z0-9-]{0,39}$'
/**
 * Every host API version this plinth serves: 1.1 and 1.2 only add to 1.0, so a module written for
 * `1.0.x` or `1.1.x` runs here too.
 */
export const SERVED_API_VERSIONS = ['1.0.0', '1.1.0', HOST_API_VERSION]

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

/** A route's TypeBox schemas (the route options' `schema`). */
export interface RouteSchema {
  params?: TSchema
  querystring?: TSchema
  body?: TSchema
  headers?: TSchema
  response?: Record<number | string, TSchema>
}

type Part<S, K extends keyof RouteSchema, Otherwise> = S extends { [P in K]: infer T extends TSchema } ? Static<T> : Otherwise

/**
 * `req` as a handler sees it: Fastify's request, Express's members (docs/modules.md), the tenant
 * (always set on a module route), the principal (null only on a `public` route) and `db`. With a
 * route schema `S`, `params`, `query` and `body` are typed from it.
 */
export interface ModuleRequest<S extends RouteSchema = {}> extends Omit<FastifyRequest, 'params' | 'query' | 'body' | 'tenant'> {
  params: Part<S, 'params', Record<string, string>>
  query: Part<S, 'querystring', Record<string, unknown>>
  body: Part<S, 'body', unknown>
  tenant: ModuleTenant
  db: TenantDb
}

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
  setHeader(name: string, value: string | number | readonly string[]): ModuleResponse
  getHeader(name: string): string | number | string[] | undefined
  hasHeader(name: string): boolean
  removeHeader(name: string): void
  locals: Record<string, unknown>
  statusCode: number
  readonly headersSent: boolean
}

export type Next = (err?: unknown) => void
/**
 * A route's handler, its guards, `router.use` middleware: Express's `(req, res, next)`, or an
 * async function that returns (the handler's value is sent as 200 JSON) or throws.
 */
export type Handler<S extends RouteSchema = {}> = (req: ModuleRequest<S>, res: ModuleResponse, next: Next) => unknown
/** Functions may come in arrays, nested or not: Express flattens them. */
export type Handlers<S extends RouteSchema = {}> = Handler<S> | readonly Handlers<S>[]
/** A guard any route can use, whatever its schema (what `ctx.rbac.require` returns). */
export type Guard = Handler<any>
/** Runs only while an error is pending, as in Express. */
export type ErrorHandler = (err: unknown, req: ModuleRequest, res: ModuleResponse, next: Next) => unknown

export interface RouteOptions<S extends RouteSchema = RouteSchema> {
  schema?: S
  summary?: string
  description?: string
  tags?: string[]
  /** Open to callers without a credential (a tenant is still needed). Default: deny them (401). */
  public?: boolean
}

/**
 * `router.get(path, [options], ...guards, handler)`; the options' schema types `req`. An error
 * handler among a route's functions runs as in Express, but is typed only for `router.use`: a
 * function that may be either kind would leave TypeScript unable to type `req` in the others.
 */
export interface RouteMethod<Self> {
  <const S extends RouteSchema>(path: string, options: RouteOptions<S>, ...handlers: Handlers<S>[]): Self
  (path: string, ...handlers: Handlers[]): Self
}

type Verb = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options' | 'all'

/** `router.route(path)`: the verbs without the path. */
export type RouteOfPath = {
  [M in Verb]: {
    <const S extends RouteSchema>(options: RouteOptions<S>, ...handlers: Handlers<S>[]): RouteOfPath
    (...handlers: Handlers[]): RouteOfPath
  }
}

/** Express's Router, as plinth serves it. */
export type ModuleRouter = { [M in Verb]: RouteMethod<ModuleRouter> } & {
  use(...fns: (Handlers | ErrorHandler)[]): ModuleRouter
  use(path: string, ...fns: (Handlers | ErrorHandler)[]): ModuleRouter
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

/** A running job, as its handler's second argument sees it (host API 1.2). */
export interface ModuleJob {
  id: string
  /** The job's name, as defined. */
  name: string
  tenant: ModuleTenant
  /** 1 on the first attempt. */
  attempt: number
  maxAttempts: number
  /** Drizzle on the job's tenant transaction, as `req.db` is on a request's. */
  db: TenantDb
  /** Log lines bound to the module, the tenant and the job's id. */
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void }
}

export interface JobOptions<S extends TSchema | undefined = undefined> {
  /** Checked at each enqueue: a payload that does not match is refused there. */
  schema?: S
  /** Attempts before the job is kept as failed (default 5). */
  maxAttempts?: number
  /** Lower runs first (default 0). */
  priority?: number
}

/** ctx.jobs.enqueue's options: the jobs layer's own (jobs/enqueue.ts). */
export type { EnqueueOptions }

type Payload<S> = S extends TSchema ? Static<S> : unknown

/** Host API 1.2: work outside the request, in the tenant's scope (docs/jobs.md). */
export interface ModuleJobs {
  /** At register time. The handler runs in its tenant's transaction; a throw retries it later. */
  define<const S extends TSchema | undefined = undefined>(name: string, handler: (payload: Payload<S>, job: ModuleJob) => unknown, options?: JobOptions<S>): void
  /** In the caller's transaction (a request's, a job's, a withTenantTx's): enqueued when it commits, never if it rolls back. */
  enqueue(name: string, payload?: unknown, options?: EnqueueOptions): Promise<void>
  /** Five cron fields, UTC: once a period, one job for each tenant that has the module enabled, across all hosts. */
  schedule(name: string, cron: string, options?: { payload?: unknown }): void
}

/** Host API 1.2: a span of the module's own, a child of the request's or the job's (a no-op when tracing is off). */
export interface ModuleSpans {
  inSpan<T>(name: string, work: () => T, attributes?: Record<string, string | number | boolean>): T
}

export interface ModuleContext {
  router: ModuleRouter
  rbac: { require(permission: string): Guard }
  /** Inside a request: joins its transaction (a SAVEPOINT), for its tenant only. Elsewhere: a transaction of its own. */
  withTenantTx<T>(tenantIdOrCode: string, work: (db: TenantDb) => Promise<T>): Promise<T>
  /** Host API 1.1: the active tenants that have this module enabled, for background work. */
  tenants(): Promise<ModuleTenant[]>
  /** Host API 1.2: jobs and schedules. */
  jobs: ModuleJobs
  /** Host API 1.2: spans. */
  trace: ModuleSpans
  log(msg: string, meta?: Record<string, unknown>): void
}
