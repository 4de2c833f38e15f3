// The folders of src/ are layers, and both ways a reader follows the code hold to them:
// - reading the source, an import only points down (cli and http → app → modules → contract,
//   access → tenancy → platform → problems.ts);
// - following a request as it runs (every call stack V8's profiler samples while keyed GETs and
//   POSTs on a module's routes are served, and every stack under which a database statement is
//   sent or a log line written), the path goes down through the layers and never climbs back up
//   to a folder above the one it is in.
import fs from 'node:fs'
import { Session } from 'node:inspector/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import pino from 'pino'
import t from 'tap'
import { startTestHost } from '../src/testing/host.ts'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))

/** Higher calls lower; equal ranks are siblings, which do not import each other. */
const RANK: Record<string, number> = {
  'problems.ts': 0,
  platform: 1,
  tenancy: 2,
  jobs: 2.5,
  access: 3,
  contract: 3,
  modules: 4,
  app: 5,
  http: 6,
  cli: 7,
  testing: 7,
  'main.ts': 8,
}

/** The layer a file of src/ is in; undefined outside src/ and for the built-in modules (src/plugins), which are modules' code. */
function layerOf(file: string): string | undefined {
  const relative = path.relative(SRC, file)
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined
  const top = relative.split(path.sep)[0]!
  if (top === 'plugins') return undefined
  if (!(top in RANK)) throw new Error(`src/${top} is in no layer: give it a rank in test/architecture.test.ts`)
  return top
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(full) : full.endsWith('.ts') ? [full] : []
  })
}

t.test('an import only points down a layer, never up or sideways', async (t) => {
  const wrong: string[] = []
  let crossings = 0
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file)
    if (!from) continue
    const text = fs.readFileSync(file, 'utf8')
    for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport\()\s*'(\.{1,2}\/[^']+)'/g)) {
      const to = layerOf(path.resolve(path.dirname(file), specifier!))
      if (!to || to === from) continue
      crossings++
      if (RANK[to]! >= RANK[from]!) wrong.push(`src/${path.relative(SRC, file)} (${from}) imports ${specifier} (${to})`)
    }
  }
  t.ok(crossings > 50, `the check saw the imports between layers (${crossings})`)
  t.same(wrong, [], 'no import points up or sideways')
})

t.test('tenancy, access and platform know nothing of HTTP: no Fastify import, types included', async (t) => {
  const http: string[] = []
  let files = 0
  for (const layer of ['tenancy', 'access', 'platform']) {
    for (const file of sourceFiles(path.join(SRC, layer))) {
      files++
      const text = fs.readFileSync(file, 'utf8')
      for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport\()\s*'([^']+)'/g)) {
        if (/^(fastify|fastify-plugin|@fastify\/.*)$/.test(specifier!)) http.push(`src/${path.relative(SRC, file)} imports ${specifier}`)
      }
    }
  }
  t.ok(files > 20, `the check read their files (${files})`)
  t.same(http, [])
})

/**
 * The layers a stack passes through, outermost first, each run of frames in one layer counted
 * once. Where Fastify's hook runner calls a hook, the path starts again: that is Fastify beginning
 * the next stage of the request (http/tenant-request.ts lists them), not our code calling up. The
 * public harness (src/testing) is the test's side: its log stream is where log lines land.
 */
function layersOf(files: string[]): string[] {
  let layers: string[] = []
  for (const file of files) {
    if (file.endsWith(path.join('node_modules', 'fastify', 'lib', 'hooks.js'))) layers = []
    const layer = layerOf(file)
    if (layer && layer !== 'testing' && layers.at(-1) !== layer) layers.push(layer)
  }
  return layers
}

/** Where a path of layers climbs back up: each step to a layer above the one it came from. */
function climbs(layers: string[]): string[] {
  return layers.slice(1).flatMap((layer, i) => (RANK[layer]! > RANK[layers[i]!]! ? [`${layers[i]} → ${layer} in ${layers.join(' → ')}`] : []))
}

/** The files of a stack trace's frames, outermost first. */
function stackFiles(stack: string): string[] {
  const files: string[] = []
  for (const [, url] of stack.matchAll(/\(?((?:file:\/\/)?\/[^():\s]+):\d+:\d+\)?$/gm)) files.push(url!.startsWith('file:') ? fileURLToPath(url!) : url!)
  return files.reverse()
}

t.test('a keyed request on a module route never climbs back up a layer', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await th.host.enableModule(acme.code, 'inventory')
  await th.host.roles.create(acme, 'stock-keeper')
  for (const permission of ['inventory.items.read', 'inventory.items.create']) await th.host.roles.grant(acme, 'stock-keeper', permission)
  const { key } = await th.host.createKey(acme.code, 'trace', ['stock-keeper'])
  const headers = { authorization: `Bearer ${key}` }
  const serve = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const post = await th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers, payload: { name: `bolt ${i}`, quantity: i } })
      const get = await th.app.inject({ url: '/api/plugins/inventory/items?limit=5', headers })
      if (post.statusCode !== 201 || get.statusCode !== 200) throw new Error(`unexpected answers ${post.statusCode} ${get.statusCode}: ${post.body} ${get.body}`)
    }
  }
  await serve(20) // warm: caches filled, code compiled

  // Stacks under which statements are sent and log lines written (async frames included).
  const stacks: string[] = []
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = Infinity
  const query = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    stacks.push(new Error('statement').stack!)
    return (query as Function).apply(this, args)
  } as typeof query
  const logWrite = (th.host.log as any)[pino.symbols.streamSym]
  const write = logWrite.write
  logWrite.write = function (...args: unknown[]) {
    stacks.push(new Error('log line').stack!)
    return write.apply(this, args)
  }
  // Every synchronous stack V8 samples while requests are served.
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 20 })
  await session.post('Profiler.start')
  try {
    await serve(150)
  } finally {
    pg.Client.prototype.query = query
    logWrite.write = write
    Error.stackTraceLimit = stackTraceLimit
  }
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()

  const paths = new Set<string>()
  const wrong = new Map<string, string[]>()
  const seen = new Set<string>()
  const check = (files: string[]) => {
    const layers = layersOf(files)
    if (layers.length === 0) return
    paths.add(layers.join(' → '))
    for (const layer of layers) seen.add(layer)
    for (const climb of climbs(layers)) if (!wrong.has(climb)) wrong.set(climb, files.map((file) => path.relative(SRC, file)))
  }
  for (const stack of stacks) check(stackFiles(stack))
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const walk = (id: number, files: string[]) => {
    const node = nodes.get(id)!
    const url = node.callFrame.url
    const here = url.startsWith('file:') ? [...files, fileURLToPath(url)] : files
    if (!node.children?.length) check(here)
    for (const child of node.children ?? []) walk(child, here)
  }
  walk(profile.nodes[0]!.id, [])

  t.ok(stacks.length >= 300, `stacks were taken under statements and log lines (${stacks.length})`)
  // The trace reached every layer a request crosses, so a climb in any of them would have shown.
  for (const layer of ['http', 'modules', 'access', 'tenancy', 'platform']) t.ok(seen.has(layer), `the trace passed through src/${layer}`)
  t.same([...wrong.keys()], [], `no path climbs back up (${paths.size} distinct paths through the layers)`)
  for (const [climb, files] of wrong) t.comment(`${climb}, through:\n  ${files.join('\n  ')}`)
})
