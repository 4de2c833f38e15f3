// ctx.router: Express's Router, as a module declares routes on it while it registers. Everything
// declared is kept in order as layers (router.use, router.all, router.get..., router.route) plus
// router.param callbacks; compileRoutes() then turns them into one Fastify route per path and
// method, each with the chain of functions Express would run for it, in Express's order. Functions
// may come in arrays, nested or not: Express flattens them.
//
// What differs from Express, and why (docs/modules.md says the same to authors):
// - A request is matched to one path pattern, the most specific (Fastify's router: static
//   segments before parameters), not tried against each pattern in declaration order. Layers
//   declared with the very same path do chain as in Express: next() and next('route') reach the
//   later ones.
// - router.use() paths are static prefixes; route paths take `:name`, a last `:name?`, and a last
//   `*name` (or `*`). Optional groups and regular expressions are refused at registration.
import type { RouteOptions } from '../../contract/contract.ts'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'
type Fn = (...args: any[]) => unknown

const METHOD_NAMES: Record<string, Method | 'ALL'> = {
  get: 'GET',
  post: 'POST',
  put: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
  head: 'HEAD',
  options: 'OPTIONS',
  all: 'ALL',
}
/** What router.all() answers: every method Fastify serves for a module, HEAD through GET. */
const ALL_METHODS: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

interface Layer {
  kind: 'use' | 'route'
  /** use: a static prefix ('' for every path); route: the Express path. */
  path: string
  method?: Method | 'ALL'
  options?: RouteOptions
  fns: Fn[]
  /**
   * The router.route(path) call it was declared through: Express makes one route of all its
   * .get()/.all()... calls, so an error in one reaches the error handlers of the others, and
   * next('route') leaves them all.
   */
  route?: object
}

/** One function of a compiled chain. */
export interface Step {
  fn: Fn
  /** `(err, req, res, next)`: runs only while an error is pending, as in Express. */
  handlesError: boolean
  /** The last function of a route declaration: the request's transaction is open when it runs. */
  isHandler: boolean
  /** Part of a route declaration (router.get/all/route...), not of router.use. */
  inRoute: boolean
  /** The first function of its layer: router.param callbacks run before it. */
  startsLayer: boolean
  /** The index of the first step of the next layer: where next('route') goes. */
  layerEnd: number
  /** For router.use functions: the mount path, which req.baseUrl and req.path reflect. */
  mount: string
  /** Route layers: their parameters, for router.param callbacks. */
  params: string[]
}

export interface CompiledRoute {
  method: Method
  /** The path as the module wrote it, and as Fastify's router takes it. */
  path: string
  url: string
  options: RouteOptions
  steps: Step[]
  /** router.param callbacks by parameter name, for the parameters this path has. */
  paramCallbacks: Map<string, Fn[]>
  /** An Express `*name` wildcard: Fastify's `*` parameter is renamed to it. */
  wildcard?: { name: string; splitSegments: boolean }
  /** GET answers HEAD too, unless the module declared HEAD itself. */
  exposeHeadRoute: boolean
  /** Added by the router, not declared by the module (the OPTIONS answer): left out of the API document. */
  automatic?: boolean
}

/** A mistake in what a module declared: the module fails with this message, alone. */
export class RouteDeclarationError extends Error {}

export interface CollectingRouter {
  router: Record<string, unknown>
  compile(): CompiledRoute[]
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype
}

const describe = (method: string, path: string) => `router.${method.toLowerCase()}(${JSON.stringify(path)})`

/** The router a module's register(ctx) sees, and what it collected. */
export function collectingRouter(): CollectingRouter {
  const layers: Layer[] = []
  const paramCallbacks = new Map<string, Fn[]>()

  function checkFunctions(where: string, fns: unknown[]): Fn[] {
    if (fns.length === 0) throw new RouteDeclarationError(`${where} needs at least one handler function`)
    fns.forEach((fn, i) => {
      if (typeof fn !== 'function') {
        throw new RouteDeclarationError(`${where}: argument ${i + 1} is ${fn === null ? 'null' : typeof fn}, not a function (a sub-router cannot be mounted; declare its routes on ctx.router)`)
      }
    })
    return fns as Fn[]
  }

  function addRoute(method: Method | 'ALL', path: unknown, rest: unknown[], route?: object) {
    const where = describe(method, String(path))
    checkRoutePath(where, path)
    const options = isPlainObject(rest[0]) ? (rest.shift() as RouteOptions) : undefined
    const layer: Layer = { kind: 'route', path: path as string, method, options, fns: checkFunctions(where, rest.flat(Infinity)), route }
    // A route() keeps its place among the router's layers, where route() was called: what was
    // declared on the router after it comes after all of it, as in Express.
    let last = -1
    if (route) for (let i = 0; i < layers.length; i++) if (layers[i]!.route === route) last = i
    if (last === -1) layers.push(layer)
    else layers.splice(last + 1, 0, layer)
  }

  const router: Record<string, unknown> = {}
  // Anything else of Express's Router is refused by name, while the module registers.
  const refusingUnknown = new Proxy(router, {
    get(target, property) {
      if (typeof property === 'symbol' || property in target || property === 'then') return target[property as string]
      throw new RouteDeclarationError(
        `router.${property} is not supported by plinth's router; it has ${Object.keys(target).join(', ')} (as Express's Router documents them)`,
      )
    },
  })
  Object.assign(router, {
    use(...args: unknown[]) {
      const path = typeof args[0] === 'string' ? (args.shift() as string) : '/'
      const where = `router.use(${JSON.stringify(path)})`
      if (!path.startsWith('/') || /[:*?(){}+]/.test(path)) {
        throw new RouteDeclarationError(`${where}: a use() path is a static prefix starting with "/" (no parameters or patterns)`)
      }
      layers.push({ kind: 'use', path: path.replace(/\/+$/, ''), fns: checkFunctions(where, args.flat(Infinity)) })
      return refusingUnknown
    },
    param(name: unknown, fn: unknown) {
      if (typeof name !== 'string' || !name) throw new RouteDeclarationError('router.param(name, fn): name must be a parameter name')
      const [callback] = checkFunctions(`router.param(${JSON.stringify(name)})`, [fn])
      paramCallbacks.set(name, [...(paramCallbacks.get(name) ?? []), callback])
      return refusingUnknown
    },
    route(path: unknown) {
      checkRoutePath(`router.route(${JSON.stringify(path)})`, path)
      const route: Record<string, unknown> = {}
      for (const [name, method] of Object.entries(METHOD_NAMES)) {
        route[name] = (...rest: unknown[]) => {
          addRoute(method, path, rest, route)
          return route
        }
      }
      return route
    },
  })
  for (const [name, method] of Object.entries(METHOD_NAMES)) {
    router[name] = (path: unknown, ...rest: unknown[]) => {
      addRoute(method, path, rest)
      return refusingUnknown
    }
  }

  return {
    router: refusingUnknown,
    compile: () => compileRoutes(layers, paramCallbacks),
  }
}

const PARAM = /^:([A-Za-z_$][\w$]*)(\?)?$/
const WILDCARD = /^\*([A-Za-z_$][\w$]*)?$/

function checkRoutePath(where: string, path: unknown): asserts path is string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new RouteDeclarationError(`${where}: the path must be a string starting with "/"`)
  }
  const segments = path.split('/').slice(1)
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1
    if (PARAM.test(segment)) {
      if (segment.endsWith('?') && !last) throw new RouteDeclarationError(`${where}: only the last parameter may be optional`)
      return
    }
    if (WILDCARD.test(segment)) {
      if (!last) throw new RouteDeclarationError(`${where}: a wildcard must be the last segment`)
      return
    }
    if (/[*?(){}+]/.test(segment)) {
      throw new RouteDeclarationError(
        `${where}: "${segment}" uses path syntax plinth does not serve (optional groups, regular expressions, inner wildcards); declare each path separately`,
      )
    }
  })
}

/** Express's path, as Fastify's router takes it, with what Fastify's `*` parameter stands for. */
function toFastifyPath(path: string): Pick<CompiledRoute, 'url' | 'wildcard'> & { params: string[] } {
  const params: string[] = []
  let wildcard: CompiledRoute['wildcard']
  const url = path
    .split('/')
    .map((segment) => {
      const wild = WILDCARD.exec(segment)
      if (wild) {
        // Express 5's `*name` gives the segments as an array; Express 4's bare `*` gives params[0].
        wildcard = wild[1] ? { name: wild[1], splitSegments: true } : { name: '0', splitSegments: false }
        params.push(wildcard.name)
        return '*'
      }
      const param = PARAM.exec(segment)
      if (param) params.push(param[1])
      return segment
    })
    .join('/')
  return { url: url || '/', wildcard, params }
}

/** A use() prefix applies to a path at a segment boundary: "/admin" to "/admin" and "/admin/x". */
const underPrefix = (path: string, prefix: string) => prefix === '' || path === prefix || path.startsWith(prefix + '/')

function compileRoutes(layers: Layer[], paramCallbacks: Map<string, Fn[]>): CompiledRoute[] {
  const routeLayers = layers.filter((l) => l.kind === 'route')
  const paths = [...new Set(routeLayers.map((l) => l.path))]
  const compiled: CompiledRoute[] = []
  const byShape = new Map<string, string>()

  for (const path of paths) {
    const onPath = routeLayers.filter((l) => l.path === path)
    const { url, wildcard, params } = toFastifyPath(path)
    // Two paths that differ only in parameter names are one route to any router but Express's.
    const shape = `${url.replace(/:[A-Za-z_$][\w$]*/g, ':')}`
    const clash = byShape.get(shape)
    if (clash) {
      throw new RouteDeclarationError(`routes ${JSON.stringify(clash)} and ${JSON.stringify(path)} match the same requests; give them one path (the same parameter names)`)
    }
    byShape.set(shape, path)

    const declared = new Set(onPath.map((l) => l.method!))
    const methods = new Set<Method>(declared.has('ALL') ? ALL_METHODS : [])
    for (const m of declared) if (m !== 'ALL') methods.add(m)
    for (const method of methods) {
      const takes = (l: Layer) =>
        l.kind === 'use' ? underPrefix(path, l.path) : l.path === path && (l.method === method || l.method === 'ALL' || (method === 'HEAD' && l.method === 'GET'))
      const chain = layers.filter(takes)
      compiled.push({
        method,
        path,
        url,
        wildcard,
        options: routeOptions(method, path, chain),
        steps: toSteps(chain),
        paramCallbacks: new Map(params.filter((p) => paramCallbacks.has(p)).map((p) => [p, paramCallbacks.get(p)!])),
        exposeHeadRoute: method === 'GET' && !declared.has('HEAD'),
      })
    }
    // Express's router answers OPTIONS itself on a path it serves: the use() middleware and all()
    // routes there run first, then 200 with Allow naming the path's declared methods (GET brings
    // HEAD; all() brings none), the same list as the body. A path with its own OPTIONS route
    // answers it as declared; a path with all() alone falls through to 404 as in Express.
    if (!declared.has('OPTIONS')) {
      const named = [...declared].filter((m) => m !== 'ALL')
      const allow = [...new Set([...named, ...(named.includes('GET') ? ['HEAD'] : [])])].sort().join(', ')
      const chain = layers.filter((l) => (l.kind === 'use' ? underPrefix(path, l.path) : l.path === path && l.method === 'ALL'))
      const answer: Layer[] = allow ? [{ kind: 'route', path, method: 'OPTIONS', fns: [answerOptions(allow)] }] : []
      if (allow || declared.has('ALL')) {
        compiled.push({
          method: 'OPTIONS',
          path,
          url,
          wildcard,
          options: {},
          automatic: true,
          steps: toSteps([...chain, ...answer]),
          paramCallbacks: new Map(params.filter((p) => paramCallbacks.has(p)).map((p) => [p, paramCallbacks.get(p)!])),
          exposeHeadRoute: false,
        })
      }
    }
  }
  return compiled
}

/** Express's automatic OPTIONS answer (router's sendOptionsResponse). */
function answerOptions(allow: string): Fn {
  return (_req: unknown, res: { set(field: string, value: string): unknown; send(body: string): unknown }) => {
    res.set('Allow', allow)
    res.set('Content-Type', 'text/plain; charset=utf-8')
    res.set('X-Content-Type-Options', 'nosniff')
    res.send(allow)
  }
}

/** One route, one schema: options may be given once per path and method. */
function routeOptions(method: Method, path: string, chain: Layer[]): RouteOptions {
  const given = chain.filter((l) => l.kind === 'route' && l.options && (l.method === method || l.method === 'ALL'))
  const specific = given.filter((l) => l.method === method)
  const chosen = specific.length > 0 ? specific : given
  if (new Set(chosen.map((l) => l.options)).size > 1) {
    throw new RouteDeclarationError(`${describe(method, path)} is declared more than once with options (schema); a route has one schema: give the options once`)
  }
  return chosen[0]?.options ?? {}
}

function toSteps(chain: Layer[]): Step[] {
  // Where each layer's functions end, and where its route() ends: the layers of one route() in a
  // row are one route (Express), which an error or next('route') leaves as a whole.
  const ends: number[] = []
  let end = 0
  for (const layer of chain) ends.push((end += layer.fns.length))
  const routeEnd = (i: number) => {
    let j = i
    while (chain[i]!.route && chain[j + 1]?.route === chain[i]!.route) j++
    return ends[j]!
  }
  const steps: Step[] = []
  chain.forEach((layer, at) => {
    const layerEnd = routeEnd(at)
    layer.fns.forEach((fn, i) => {
      steps.push({
        fn,
        handlesError: fn.length === 4,
        isHandler: layer.kind === 'route' && i === layer.fns.length - 1,
        inRoute: layer.kind === 'route',
        startsLayer: i === 0,
        layerEnd,
        mount: layer.kind === 'use' ? layer.path : '',
        params: layer.kind === 'route' ? toFastifyPath(layer.path).params : [],
      })
    })
  })
  return steps
}
