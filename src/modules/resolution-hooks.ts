// Node module hooks for modules kept outside this project. On Node 20 they run in Node's hooks
// thread (node:module register), so this file imports nothing of plinth's but types: what it needs
// comes in `data`. On Node 22.15 and later they run in the importing thread (registerHooks).
//
// - The contract's packages (typebox, drizzle-orm and its subpaths, plinth's own) resolve to the
//   host's copies, from wherever a module imports them: a module folder needs no node_modules,
//   and the process holds one TypeBox and one Drizzle, the ones the host validates and queries with.
// - A module's .ts and .js files are ES modules, as the contract writes them, even in a folder with
//   no package.json (where Node would take them for CommonJS). A package.json that says
//   "type": "commonjs" is obeyed.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { NextResolveSync, ResolveContext, Resolved } from '../platform/register-hooks.ts'

export interface ResolutionHooksData {
  /** file: URLs (ending in /) of the folders that hold modules. */
  moduleRoots: string[]
  /** A file: URL inside the host, from which the contract's packages resolve. */
  hostUrl: string
  /** The host's own `plinth/module` (src/contract/module.ts, or dist/contract/module.js when built). */
  moduleApiUrl: string
  /** More packages to take from the host: `tap`, for a module's tests run from the host. */
  testPackages?: string[]
}

let hostPackage = /^(typebox|drizzle-orm|plinth)(\/|$)/
const MODULE_SOURCE = /\.(ts|js|mts|mjs)$/

let moduleRoots: string[] = []  // every registration's, in this hooks thread
let hostUrl = ''
let moduleApiUrl = ''

// Called again, with more roots, when a host process meets new module folders.
export function initialize(data: ResolutionHooksData) {
  moduleRoots = [...new Set([...moduleRoots, ...data.moduleRoots])]
  hostUrl = data.hostUrl
  moduleApiUrl = data.moduleApiUrl
  if (data.testPackages?.length) hostPackage = new RegExp(`^(typebox|drizzle-orm|plinth|${data.testPackages.join('|')})(\\/|$)`)
}

const inModuleRoot = (url: string | undefined) => url !== undefined && moduleRoots.some((root) => url.startsWith(root))

type NextResolve = (specifier: string, context: ResolveContext) => Promise<Resolved>

// One rule, two faces: `resolve` for module.register (Node's hooks thread: Node 20), `resolveSync`
// for module.registerHooks (in the thread that imports: Node 22.15 on), which spares a built
// host's process a thread of its own (about 50 ms at start, in `plinth tenant import`).
export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<Resolved> {
  const asked = ask(specifier, context)
  return 'url' in asked ? asked : asModule(await nextResolve(specifier, asked.context))
}

export function resolveSync(specifier: string, context: ResolveContext, nextResolve: NextResolveSync): Resolved {
  const asked = ask(specifier, context)
  return 'url' in asked ? asked : asModule(nextResolve(specifier, asked.context))
}

/** Answered here (`plinth/module`), or the context the next hook resolves in: the host's, for a contract package a module imports. */
function ask(specifier: string, context: ResolveContext): Resolved | { context: ResolveContext } {
  if (inModuleRoot(context.parentURL) && hostPackage.test(specifier)) {
    // The package's exports name the source; a built host serves its compiled copy.
    if (specifier === 'plinth/module') return { url: moduleApiUrl, format: 'module', shortCircuit: true }
    return { context: { ...context, parentURL: hostUrl } }
  }
  return { context }
}

/** A module's own source file is an ES module, unless a package.json in its root says "commonjs". */
function asModule(resolved: Resolved): Resolved {
  if (inModuleRoot(resolved.url) && MODULE_SOURCE.test(resolved.url) && !declaredCommonJs(resolved.url)) return { ...resolved, format: 'module' }
  return resolved
}

const commonJsByFolder = new Map<string, boolean>()

/** Whether the nearest package.json, looking no further up than the module root, says "type": "commonjs". */
function declaredCommonJs(url: string): boolean {
  const dir = path.dirname(fileURLToPath(url))
  let answer = commonJsByFolder.get(dir)
  if (answer === undefined) {
    const type = readPackageType(path.join(dir, 'package.json'))
    const parent = path.dirname(dir)
    if (type !== undefined) answer = type === 'commonjs'
    else if (parent !== dir && inModuleRoot(pathToFileURL(parent).href + '/')) answer = declaredCommonJs(pathToFileURL(path.join(parent, 'x')).href)
    else answer = false
    commonJsByFolder.set(dir, answer)
  }
  return answer
}

/** A package.json's "type" ('' when it has none); undefined when there is no package.json. */
function readPackageType(file: string): string | undefined {
  try {
    const type = JSON.parse(fs.readFileSync(file, 'utf8')).type
    return typeof type === 'string' ? type : ''
  } catch {
    return undefined
  }
}
