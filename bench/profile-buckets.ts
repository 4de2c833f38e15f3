// Where a plinth server's CPU went, by part: each sample goes to the nearest frame (from the leaf
// up) that belongs to a known part, so a socket write lands with pg or with node's http, a
// serializer call with serialization. `node --import tsx bench/profile-buckets.ts <file.cpuprofile>`
import fs from 'node:fs'

const PARTS: [string, RegExp][] = [
  ['logging (pino, sonic-boom, redaction)', /node_modules\/(pino|sonic-boom|@pinojs)\/|\/host\/logger\.|request-context\.[jt]s.*logRequest/],
  ['response serialization (fast-json-stringify)', /node_modules\/fast-json-stringify\//],
  ['validation (ajv)', /node_modules\/(ajv|@fastify\/ajv-compiler)\//],
  ['body parsing', /content-type-parser\.js|secure-json-parse/],
  ['drizzle', /node_modules\/drizzle-orm\//],
  ['pg driver and its socket writes', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+)\//],
  ['identity, RBAC, tenant resolution', /\/(rbac|tenancy\/(tenant-scope|registry))\/?|node:internal\/crypto/],
  ['module code (inventory)', /\/plugins\//],
  ['plinth host (transaction, adapter, hooks)', /\/(dist|src)\/(host|tenancy)\//],
  ['async_hooks (AsyncLocalStorage)', /node:(internal\/)?async_hooks/],
  ['fastify', /node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify\/[a-z-]+)\//],
]
// Node's own frames count for the nearest part above them (pg's socket write is pg's); what runs
// with no part above it at all (parsing an incoming request, flushing a response) is node's.
const NODE_IO = /node:(_http|net|internal\/(streams|stream_base|http|net))/

const profile = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const parent = new Map<number, number>()
const byId = new Map<number, any>()
for (const node of profile.nodes) {
  byId.set(node.id, node)
  for (const child of node.children ?? []) parent.set(child, node.id)
}
const partOf = new Map<number, string>()
function part(id: number): string {
  const known = partOf.get(id)
  if (known) return known
  const node = byId.get(id)
  const where = `${node.callFrame.url}:${node.callFrame.functionName}`
  const match = PARTS.find(([, re]) => re.test(where))
  const up = parent.get(id)
  let name = match ? match[0] : up === undefined ? 'other' : part(up)
  if (name === 'other' && NODE_IO.test(where)) name = 'node http, net, streams'
  partOf.set(id, name)
  return name
}
const leafName = (id: number) => byId.get(id).callFrame.functionName
const totals = new Map<string, number>()
profile.samples.forEach((id: number, i: number) => {
  const leaf = leafName(id)
  if (leaf === '(idle)') return
  const name = leaf === '(garbage collector)' ? 'garbage collection' : leaf === '(program)' ? 'V8 and native, unattributed' : part(id)
  totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0))
})
const busy = [...totals.values()].reduce((a, b) => a + b, 0)
for (const [name, us] of [...totals.entries()].sort((a, b) => b[1] - a[1])) console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`)
