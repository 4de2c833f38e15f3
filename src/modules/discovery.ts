// Finds modules and checks them, without running any of their register(ctx) (loader.ts does). A
// module that breaks a rule is `refused`; one that cannot be imported is `failed`. Either way it
// is recorded with its reason and every other module carries on. Read without its code (the CLI's
// read-only commands), a module whose manifest passes is `found`.
import fs from 'node:fs/promises'
import path from 'node:path'
import { register } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { MigrationError, readBaseline, readMigrations, type Baseline, type MigrationFile } from '../tenancy/migration-files.ts'
import type { ModuleContext, ModuleDefinition, ModuleManifest } from '../contract/contract.ts'
import { MODULE_ID } from '../contract/contract.ts'
import { checkAgreement, checkManifest, ModuleRefusal } from './manifest.ts'
import { initialize as initializeResolution, resolveSync, type ResolutionHooksData } from './resolution-hooks.ts'
import { registerHooks } from '../platform/register-hooks.ts'
import type { CompiledRoute } from './express/router.ts'

export interface ModuleRecord {
  id: string
  dir: string
  name?: string
  version?: string
  api?: string
  /** `found`: its manifest was read and passes, its code was not imported (DiscoverOptions.code). */
  status: 'loaded' | 'found' | 'failed' | 'refused'
  /** Which rule or step, and which field: for the log and the platform admin. */
  reason?: string
  manifest?: ModuleManifest
  definition?: ModuleDefinition
  /** The ctx its register() was given; its health() gets the same one. */
  ctx?: ModuleContext
  migrations: MigrationFile[]
  /** migrations/baseline: what a tenant new to the module gets in place of its first files. */
  baseline?: Baseline
  /** Its routes, one per path and method, each with the chain Express would run. */
  routes: CompiledRoute[]
}

/** What plinth says about a module to operators: the reason is theirs alone. */
export function describeModule(m: ModuleRecord, withReason: boolean) {
  return {
    id: m.id,
    name: m.name ?? null,
    version: m.version ?? null,
    api: m.api ?? null,
    status: m.status,
    ...(withReason && m.reason ? { reason: m.reason } : {}),
  }
}

const PLUGIN_FILES = ['plugin.ts', 'plugin.js']

/**
 * The module folders under a root: those holding a plugin.ts or plugin.js. Anything else a
 * module repository keeps beside its modules (node_modules, .git, docs...) is not a module.
 */
async function moduleFolders(root: string): Promise<string[]> {
  let entries
  try {
    entries = await fs.readdir(root, { withFileTypes: true })
  } catch (err: any) {
    if (err.code === 'ENOENT') return []
    throw err
  }
  const folders: string[] = []
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const dir = path.join(root, entry.name)
    for (const file of PLUGIN_FILES) {
      if (await exists(path.join(dir, file))) {
        folders.push(dir)
        break
      }
    }
  }
  return folders.sort()
}

/**
 * Imports `<name>.js` (a compiled module, as the built host's own are) or else `<name>.ts`. A host
 * started from dist/ runs plain JavaScript; the first TypeScript module it meets registers tsx, so
 * modules in PLINTH_MODULE_DIRS load unchanged either way.
 */
async function importModuleFile(dir: string, name: string) {
  const js = path.join(dir, `${name}.js`)
  const file = (await exists(js)) ? js : path.join(dir, `${name}.ts`)
  if (file.endsWith('.ts') && !typeScriptLoads) {
    const { register } = await import('tsx/esm/api')
    register()
    typeScriptLoads = true
  }
  return import(pathToFileURL(file).href)
}

// This file is .ts only when a TypeScript loader (tsx) runs it; built, it is .js and there is none.
let typeScriptLoads = import.meta.url.endsWith('.ts')

const hooksRegisteredFor = new Set<string>()
let resolvingInThread = false

/** Lets modules under `roots` import the contract's packages and be ES modules (resolution-hooks.ts). */
export function registerResolutionHooks(roots: string[], testPackages?: string[]) {
  const moduleRoots = roots.map((root) => pathToFileURL(path.resolve(root)).href.replace(/\/?$/, '/')).filter((url) => !hooksRegisteredFor.has(url))
  if (moduleRoots.length === 0) return
  for (const url of moduleRoots) hooksRegisteredFor.add(url)
  const ext = path.extname(fileURLToPath(import.meta.url))
  const data: ResolutionHooksData = { moduleRoots, hostUrl: import.meta.url, moduleApiUrl: new URL(`../contract/module${ext}`, import.meta.url).href, testPackages }
  if (registerHooks) {
    // In this thread: the same module instance, so its roots are set by a plain call.
    initializeResolution(data)
    if (!resolvingInThread) registerHooks({ resolve: resolveSync })
    resolvingInThread = true
  } else register(new URL(`./resolution-hooks${ext}`, import.meta.url), { data })
}

const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  )

export interface DiscoverOptions {
  /** false: read each module's manifest and migrations only; its plugin.ts is not imported. */
  code?: boolean
}

/** Imports and checks every module under `roots`, without running any register(). */
export async function discoverModules(roots: string[], only: '*' | string[], { code = true }: DiscoverOptions = {}): Promise<ModuleRecord[]> {
  const records: ModuleRecord[] = []
  registerResolutionHooks(roots)
  for (const root of roots) {
    for (const dir of await moduleFolders(root)) {
      const id = path.basename(dir)
      if (only !== '*' && !only.includes(id)) continue
      const record: ModuleRecord = { id, dir, status: 'loaded', migrations: [], routes: [] }
      records.push(record)
      try {
        if (records.some((r) => r !== record && r.id === id)) {
          throw new ModuleRefusal('duplicate', 'id', `another module with id "${id}" was found first`)
        }
        if (!new RegExp(MODULE_ID).test(id)) {
          throw new ModuleRefusal('manifest', 'id', `folder name "${id}" is not a module id (a-z, 0-9, -, starting with a letter, at most 40)`)
        }
        const config = await importModuleFile(dir, 'module.config')
        const manifest = checkManifest(config.default, id)
        Object.assign(record, { manifest, name: manifest.name, version: manifest.version, api: manifest.api })
        if (code) {
          const plugin = await importModuleFile(dir, 'plugin')
          record.definition = checkAgreement(plugin.default, plugin.permissions, manifest)
        } else record.status = 'found'
        record.migrations = await readMigrations(path.join(dir, 'migrations'))
        record.baseline = await readBaseline(path.join(dir, 'migrations'), record.migrations).catch((err) => {
          if (err instanceof MigrationError) throw new ModuleRefusal('migrations', 'baseline', err.message)
          throw err
        })
      } catch (err) {
        record.status = err instanceof ModuleRefusal ? 'refused' : 'failed'
        record.reason = err instanceof ModuleRefusal ? `${err.rule} (${err.field}): ${err.message}` : `could not import: ${(err as Error).message}`
      }
    }
  }
  return records
}

