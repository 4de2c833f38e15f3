// ctx.router: Express-style route declarations, collected while a module registers and then
// mounted as Fastify routes in the module's own context. Guards become route preHandlers (they
// run before any pooled client is taken); the last handler becomes the route handler (it runs in
// the request's tenant transaction). `res` maps straight onto Fastify's reply, so the COMMIT
// still happens before anything is sent.
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler, preHandlerHookHandler, RouteHandlerMethod } from 'fastify'
import { AsyncLocalStorage } from 'node:async_hooks'
import { checkPermission, requiredPermission } from '../../rbac/require.ts'
import type { Guard, Handler, ModuleRequest, ModuleResponse, RouteOptions } from './contract.ts'

export interface CollectedRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  path: string
  options: RouteOptions
  guards: Guard[]
  handler: Handler
}

/** The request a module's code is running for, so ctx.log can carry its request id. */
export const currentRequest = new AsyncLocalStorage<FastifyRequest>()

const METHODS = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE' } as const

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype
}

/** The router a module's register(ctx) sees; `routes` holds what it declared. */
export function collectingRouter(moduleId: string) {
  const routes: CollectedRoute[] = []
  const declare = (method: CollectedRoute['method']) => (path: string, ...rest: unknown[]) => {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new Error(`${moduleId}: ${method} route path must be a string starting with "/" (got ${JSON.stringify(path)})`)
    }
    const options = isPlainObject(rest[0]) ? (rest.shift() as RouteOptions) : {}
    if (rest.length === 0 || !rest.every((h) => typeof h === 'function')) {
      throw new Error(`${moduleId}: ${method} ${path} needs at least one handler, and every handler must be a function`)
    }
    const handlers = rest as Handler[]
    routes.push({ method, path, options, guards: handlers.slice(0, -1) as Guard[], handler: handlers[handlers.length - 1] })
  }
  const router = Object.fromEntries(Object.entries(METHODS).map(([name, method]) => [name, declare(method)])) as Record<
    keyof typeof METHODS,
    (path: string, ...rest: unknown[]) => void
  >
  return { router, routes }
}

/** Express's `res`, over Fastify's reply. */
class Response implements ModuleResponse {
  ended = false
  onEnd: (() => void) | undefined

  constructor(private readonly reply: FastifyReply) {}

  get headersSent() {
    return this.ended
  }

  status(code: number) {
    this.reply.code(code)
    return this
  }

  header(name: string, value: string) {
    this.reply.header(name, value)
    return this
  }

  set(name: string, value: string) {
    return this.header(name, value)
  }

  json(body: unknown) {
    this.reply.type('application/json; charset=utf-8')
    this.finish(body)
  }

  send(body?: unknown) {
    this.finish(body)
  }

  end() {
    this.finish(undefined)
  }

  private finish(body: unknown) {
    if (this.ended) throw new Error('the response was already sent')
    this.ended = true
    this.reply.send(body)
    this.onEnd?.()
  }
}

/** Runs an Express-style function: `(req, res, next)` calls next, `(req, res)` resolves or throws. */
function runExpressStyle(fn: Function, request: FastifyRequest, res: Response): Promise<unknown> {
  if (fn.length < 3) {
    try {
      return Promise.resolve(fn(request, res))
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return new Promise((resolve, reject) => {
    res.onEnd = () => resolve(undefined)
    try {
      const result = fn(request, res, (err?: unknown) => (err ? reject(err) : resolve(undefined)))
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, reject)
    } catch (err) {
      reject(err)
    }
  })
}

function guardHook(guard: Guard): preHandlerHookHandler | preHandlerAsyncHookHandler {
  // ctx.rbac.require's guard is the host's own: checked directly, without the Express adapter,
  // a promise or the request context it sets up for module code.
  const permission = requiredPermission(guard)
  if (permission !== undefined) {
    return function checkRequiredPermission(request, _reply, done) {
      try {
        checkPermission(request, permission)
      } catch (err) {
        return done(err as Error)
      }
      done()
    }
  }
  return async function runGuard(request: FastifyRequest, reply: FastifyReply) {
    const res = new Response(reply)
    await currentRequest.run(request, () => runExpressStyle(guard, request, res))
    // A guard that answered itself ends the chain.
    if (res.ended) return reply
  }
}

function routeHandler(handler: Handler): RouteHandlerMethod {
  return async function runHandler(request, reply) {
    const res = new Response(reply)
    const result = await currentRequest.run(request, () => runExpressStyle(handler, request as ModuleRequest, res))
    if (res.ended) return reply
    // A returned value is the 200 JSON body; nothing returned means the handler answers later.
    return result === undefined ? reply : result
  }
}

export function mountRoutes(scope: FastifyInstance, moduleId: string, routes: CollectedRoute[]) {
  for (const route of routes) {
    const { schema = {}, summary, description, tags } = route.options
    scope.route({
      method: route.method,
      url: route.path,
      schema: { ...schema, summary, description, tags: tags ?? [moduleId] },
      config: { module: moduleId },
      preHandler: route.guards.map(guardHook),
      handler: routeHandler(route.handler),
    })
  }
}
