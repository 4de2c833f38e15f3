// Runs a compiled route's chain for one request the way Express's router would: each function in
// declaration order; next() goes on, next('route') skips to the next layer, next('router') leaves
// the module (404), next(err) or a throw looks for an error handler `(err, req, res, next)`. A
// function that answers ends the chain. The request's transaction opens just before the first
// route handler (the last function of a route declaration), so guards before it run without
// holding a pooled client; ctx.withTenantTx in a guard opens it earlier.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { checkPermission, checkPermissionFresh, requiredPermission } from '../../access/require.ts'
import { tracing } from '../../platform/tracing.ts'
import { currentRequest } from '../../tenancy/current-request.ts'
import { HttpProblem } from '../../problems.ts'
import { ExpressResponse, type Next } from './response.ts'
import type { CompiledRoute, Step } from './router.ts'

type Outcome =
  | { kind: 'next' }
  | { kind: 'route' }
  | { kind: 'router' }
  | { kind: 'error'; error: unknown }
  | { kind: 'sent' }
  /** Returned without answering or calling next: a value to answer with, or undefined. */
  | { kind: 'returned'; value: unknown }

const NEXT: Outcome = { kind: 'next' }
const ROUTE: Outcome = { kind: 'route' }
const ROUTER: Outcome = { kind: 'router' }
const SENT: Outcome = { kind: 'sent' }

/** The Fastify handler of one compiled route: the chain, with module code in the request's context. */
export function chainHandler(route: CompiledRoute) {
  return function runModuleRoute(request: FastifyRequest, reply: FastifyReply) {
    const res = new ExpressResponse(request, reply)
    const inProgress = {
      tenant: request.tenant,
      // None on an open route (a module's /health): it has no tenant.
      transaction: request.transaction ?? undefined,
      log: request.log,
      answered: () => res.headersSent || reply.sent,
    }
    return currentRequest.run(inProgress, () => runChain(route, request, reply, res))
  }
}

/** The module attribute of a module span (tracing on only: routeOptions builds an object). */
function moduleOf(request: FastifyRequest) {
  return { 'plinth.module': request.routeOptions.config?.module }
}

async function runChain(route: CompiledRoute, request: FastifyRequest, reply: FastifyReply, res: ExpressResponse) {
  if (route.wildcard) renameWildcard(request.params as Record<string, unknown>, route.wildcard)
  const steps = route.steps
  const paramsDone = route.paramCallbacks.size > 0 ? new Map<string, unknown>() : undefined
  let error: unknown
  // An error raised in a route layer reaches that layer's error handlers; once it leaves the
  // layer, later route layers are skipped and only router.use error handlers see it (Express).
  let errorLayerEnd = 0
  const fail = (err: unknown, step: Step) => {
    error = err
    errorLayerEnd = step.inRoute ? step.layerEnd : 0
  }
  let i = 0
  while (i < steps.length) {
    const step = steps[i]
    if (error === undefined ? step.handlesError : !step.handlesError || (step.inRoute && i >= errorLayerEnd)) {
      i++
      continue
    }
    request.expressMount = step.mount
    // router.param callbacks run before the functions of a route layer, its guards included.
    if (paramsDone && step.startsLayer && error === undefined) {
      const paramOutcome = await runParamCallbacks(route, step, request, res, paramsDone)
      if (paramOutcome.kind === 'sent') return reply
      if (paramOutcome.kind === 'error') fail(paramOutcome.error, step)
      if (paramOutcome !== NEXT) {
        i = paramOutcome.kind === 'router' ? steps.length : step.layerEnd
        continue
      }
    }
    let outcome: Outcome
    const permission = requiredPermission(step.fn)
    if (permission !== undefined) {
      // ctx.rbac.require's own guard: checked in line, no Express adapter, and no promise unless
      // the cached permissions refuse (then they are read again once: checkPermissionFresh).
      try {
        if (tracing) await tracing.inSpan('guard rbac.require', { ...moduleOf(request), 'plinth.permission': permission }, () => checkPermissionFresh(request, permission))
        else if (request.principal?.permissions.has(permission)) checkPermission(request, permission)
        else await checkPermissionFresh(request, permission)
        outcome = NEXT
      } catch (err) {
        outcome = { kind: 'error', error: err }
      }
    } else {
      // The request's transaction opens here, before the route's handler (its guards ran without a client).
      if (step.isHandler && !step.handlesError && request.transaction) {
        try {
          await request.transaction.open()
        } catch (err) {
          fail(err, step)
          i = step.layerEnd
          continue
        }
      }
      outcome = tracing && step.isHandler ? await tracing.inSpan('handler', { ...moduleOf(request), 'code.function.name': step.fn.name || undefined }, () => invoke(step, error, request, res)) : await invoke(step, error, request, res)
    }

    switch (outcome.kind) {
      case 'sent':
        return reply
      case 'returned':
        // A guard written `async (req, res)` that returned let the request through.
        if (!step.isHandler) {
          i++
          break
        }
        // The route's handler returned without calling next: its value is the 200 JSON body, or
        // it answers later through `res`.
        return outcome.value === undefined ? reply : outcome.value
      case 'next':
        error = undefined
        i++
        break
      case 'route':
        error = undefined
        i = step.inRoute ? step.layerEnd : i + 1
        break
      case 'router':
        error = undefined
        i = steps.length
        break
      case 'error':
        fail(outcome.error, step)
        i++
        break
    }
  }
  if (error !== undefined) throw error
  if (res.headersSent || reply.sent) return reply
  throw new HttpProblem(404, 'NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}.`)
}

/** Calls one function of the chain and says how it ended. */
function invoke(step: Step, error: unknown, request: FastifyRequest, res: ExpressResponse): Promise<Outcome> {
  const fn = step.fn
  // `(req, res)` and `async (req, res)`: done when they return. They take no next, but what they
  // call may (res.format's fallback does, as Express's req.next).
  if (!step.handlesError && fn.length < 3) {
    let passed: Outcome | undefined
    res.next = (arg) => (passed ??= outcomeOfNext(arg))
    const ended = (value: unknown): Outcome => {
      if (res.headersSent) return SENT
      if (passed) return passed
      // `(req, res) => res.status(201).json(...)` and the like return res itself: not a body.
      return { kind: 'returned', value: value === res ? undefined : value }
    }
    let result: unknown
    try {
      result = fn(request, res)
    } catch (err) {
      return Promise.resolve(res.headersSent ? afterAnswer(request, err) : { kind: 'error', error: err })
    }
    if (!isPromise(result)) return Promise.resolve(ended(result))
    return result.then(ended, (err) => (res.headersSent ? afterAnswer(request, err) : { kind: 'error', error: rejection(err) }))
  }
  // `(req, res, next)` and `(err, req, res, next)`: done when next is called or the response sent.
  return new Promise<Outcome>((resolve) => {
    let settled = false
    const settle = (outcome: Outcome) => {
      if (settled) return
      settled = true
      res.onSent = undefined
      resolve(outcome)
    }
    const next: Next = (arg) => settle(outcomeOfNext(arg))
    res.next = next
    res.onSent = () => settle(SENT)
    let result: unknown
    try {
      result = step.handlesError ? fn(error, request, res, next) : fn(request, res, next)
    } catch (err) {
      settle(res.headersSent ? SENT : { kind: 'error', error: err })
      return
    }
    if (isPromise(result)) {
      result.then(
        (value) => {
          if (value !== undefined && value !== res && step.isHandler) settle({ kind: 'returned', value })
        },
        (err) => (settled ? afterAnswer(request, err) : settle({ kind: 'error', error: rejection(err) })),
      )
    }
  })
}

/** router.param callbacks of the layer starting at `step`, each once per request and value. */
async function runParamCallbacks(
  route: CompiledRoute,
  step: Step,
  request: FastifyRequest,
  res: ExpressResponse,
  done: Map<string, unknown>,
): Promise<Outcome> {
  const params = request.params as Record<string, unknown>
  for (const name of step.params) {
    const callbacks = route.paramCallbacks.get(name)
    if (!callbacks || (done.has(name) && done.get(name) === params[name])) continue
    done.set(name, params[name])
    for (const callback of callbacks) {
      const outcome = await new Promise<Outcome>((resolve) => {
        res.onSent = () => resolve(SENT)
        const next: Next = (arg) => resolve(outcomeOfNext(arg))
        res.next = next
        try {
          const result = callback(request, res, next, params[name], name)
          if (isPromise(result)) result.then(undefined, (err) => resolve({ kind: 'error', error: rejection(err) }))
        } catch (err) {
          resolve({ kind: 'error', error: err })
        }
      })
      res.onSent = undefined
      if (outcome !== NEXT) return outcome
    }
  }
  return NEXT
}

/** What next(arg) asks for: go on, skip to the next route, leave the router, or an error. */
function outcomeOfNext(arg: unknown): Outcome {
  if (arg === undefined || arg === null) return NEXT
  if (arg === 'route') return ROUTE
  if (arg === 'router') return ROUTER
  return { kind: 'error', error: arg }
}

/** A promise rejected with nothing (or a falsy value) is still an error, as Express 5's router makes it. */
const rejection = (err: unknown) => err || new Error('Rejected promise')

/** Module code that failed after its response was sent: the caller has its answer; the log has this. */
function afterAnswer(request: FastifyRequest, err: unknown): Outcome {
  request.log.error({ err, module: request.routeOptions.config?.module }, 'module code failed after its response was sent')
  return SENT
}

function renameWildcard(params: Record<string, unknown>, wildcard: NonNullable<CompiledRoute['wildcard']>) {
  const value = String(params['*'] ?? '')
  delete params['*']
  params[wildcard.name] = wildcard.splitSegments ? value.split('/') : value
}

const isPromise = (value: unknown): value is Promise<unknown> => typeof (value as Promise<unknown> | undefined)?.then === 'function'

declare module 'fastify' {
  interface FastifyRequest {
    /** The router.use() mount path of the function running now ('' for route functions). */
    expressMount: string
  }
}
