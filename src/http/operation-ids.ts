// Every operation in the OpenAPI document gets an operationId a generated client can use as a
// method name: `<owner>.<verb><Resource>`, the owner being the module (`inventory.listItems`),
// `admin` for /api/admin, or `plinth` for the host's other routes. Derived from the method and
// the path alone, so it stays the same while the route does; a route's own `schema.operationId`
// wins. Two routes that would get the same id are told apart by a number, in registration order.

const VERBS: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'replace', PATCH: 'update', DELETE: 'delete' }

const isParam = (segment: string) => segment.startsWith(':') || segment.startsWith('{')
const words = (segment: string) => segment.split(/[^A-Za-z0-9]+/).filter(Boolean)
const pascal = (segment: string) => words(segment).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')
const camel = (segment: string) => {
  const name = pascal(segment)
  return name[0]!.toLowerCase() + name.slice(1)
}
const isPlural = (segment: string) => /[^s]s$/.test(segment)
const singular = (segment: string) => (/ies$/.test(segment) ? segment.slice(0, -3) + 'y' : isPlural(segment) ? segment.slice(0, -1) : segment)

/** The owner and the path below it: /api/plugins/inventory/items/:id -> ['inventory', ['items', ':id']]. */
function ownerOf(url: string): [string, string[]] {
  const segments = url.split('/').filter(Boolean)
  if (segments[0] === 'api' && segments[1] === 'plugins' && segments.length > 2) return [segments[2]!, segments.slice(3)]
  if (segments[0] === 'api' && segments[1] === 'admin') return ['admin', segments.slice(2)]
  return ['plinth', segments[0] === 'api' ? segments.slice(1) : segments]
}

/** `<owner>.<verb><Resource>` for one route, before telling equal ids apart. */
export function operationIdFor(method: string, url: string): string {
  const [owner, segments] = ownerOf(url)
  const m = method.toUpperCase()
  const verb = VERBS[m] ?? m.toLowerCase()
  const last = segments.at(-1)
  if (last === undefined) return `${owner}.${verb}Index`
  const previous = segments.at(-2)
  if (isParam(last)) {
    // /items/:id: one of the collection before it.
    const collection = segments.slice(0, -1).filter((s) => !isParam(s)).at(-1) ?? 'item'
    return `${owner}.${verb}${pascal(singular(collection))}`
  }
  if (m === 'GET') {
    if (isPlural(last)) return `${owner}.list${pascal(last)}`
    return `${owner}.get${segments.filter((s) => !isParam(s)).map(pascal).join('')}`
  }
  // POST /tickets/close-stale: an action on the collection before it.
  if (m === 'POST' && previous !== undefined && !isParam(previous) && isPlural(previous) && !isPlural(last)) return `${owner}.${camel(last)}${pascal(previous)}`
  return `${owner}.${verb}${pascal(m === 'POST' ? singular(last) : last)}`
}

/**
 * operationIdFor with ids made unique: the same route asked for again gets the same id (the
 * document may be built more than once), another route with an equal id gets `2`, `3`...
 */
export function operationIds() {
  const byRoute = new Map<string, string>()
  const taken = new Set<string>()
  return (method: string, url: string, own?: string): string => {
    const route = `${method.toUpperCase()} ${url}`
    const known = byRoute.get(route)
    if (known) return known
    const base = own ?? operationIdFor(method, url)
    let id = base
    for (let n = 2; taken.has(id); n++) id = `${base}${n}`
    taken.add(id)
    byRoute.set(route, id)
    return id
  }
}
