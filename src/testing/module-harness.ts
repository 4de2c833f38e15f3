// The harness a module's tap suite imports (`plinth/testing`): a running host with just the
// modules it names, on a fresh database (PostgreSQL when DATABASE_URL is set, else embedded), its
// tenants created with those modules enabled, and clients that call the module's routes as a
// principal holding exactly the permissions the test names.
//
//   const h = await startModuleHost(t, { tenants: ['acme', 'beta'] })   // the module this test sits in
//   const reader = await h.client({ tenant: 'acme', permissions: ['inventory.items.read'] })
//   const res = await reader.get('/items')          // GET /api/plugins/inventory/items
//   expectStatus(t, res, 200)                       // on failure: the problem body and the request's log lines
import type { LightMyRequestResponse } from 'fastify'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { BUILTIN_MODULES_DIR } from '../app/paths.ts'
import { envValue, moduleDirsFrom } from '../app/config.ts'
import type { Tenant } from '../tenancy/registry.ts'
import { baselineDifferences } from './baseline.ts'
import { startTestHost, type TestHost } from './host.ts'

export interface ModuleHostOptions {
  /**
   * The modules to load, each a module id (found in src/plugins or PLINTH_MODULE_DIRS) or a module
   * folder. Default: the module folder the test file sits in. Nothing else loads.
   */
  modules?: string[]
  /** Tenant codes to create, each with every named module enabled. Default: ['acme']. */
  tenants?: string[]
  /** Extra settings, as environment variables. */
  env?: Record<string, string>
}

export interface ClientOptions {
  tenant: string
  /** Exactly what the caller may do (grants: exact or patterns); omit for no credential at all. */
  permissions?: string[]
  /** Which module's routes the paths are relative to; defaults to the first named module. */
  module?: string
  /** Sent with every request of this client. */
  headers?: Record<string, string>
}

export interface RequestOptions {
  /** Sent with this request, over the client's. */
  headers?: Record<string, string>
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
type LogLine = Record<string, any>

export interface HarnessResponse extends LightMyRequestResponse {
  /** The log lines the host wrote while serving this request (its request id's). */
  logs: LogLine[]
}

export interface ModuleClient {
  request(method: Method, path: string, options?: RequestOptions & { body?: unknown }): Promise<HarnessResponse>
  get(path: string, options?: RequestOptions): Promise<HarnessResponse>
  post(path: string, body?: unknown, options?: RequestOptions): Promise<HarnessResponse>
  put(path: string, body?: unknown, options?: RequestOptions): Promise<HarnessResponse>
  patch(path: string, body?: unknown, options?: RequestOptions): Promise<HarnessResponse>
  delete(path: string, options?: RequestOptions): Promise<HarnessResponse>
}

export interface ModuleHost extends TestHost {
  tenants: Record<string, Tenant>
  /** The ids of the modules loaded. */
  modules: string[]
  /** A caller with a real API key of the tenant, whose one role grants exactly `permissions`. */
  client(options: ClientOptions): Promise<ModuleClient>
  /**
   * What differs between the schema a module's migration files make and the one its baseline
   * (migrations/baseline) makes; [] when they agree or it has none. Default: the first module.
   */
  baselineDifferences(module?: string): Promise<string[]>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** What a tap `t` offers that expectStatus uses. */
interface Assert {
  pass(message: string): unknown
  fail(message: string, extra: Record<string, unknown>): unknown
}

/**
 * Asserts a response's status. A mismatch fails with what a reader needs to see why: the body
 * (plinth's problem: code, detail, errors) and every log line the host wrote for that request.
 */
export function expectStatus(t: Assert, res: HarnessResponse, status: number, message = `status ${status}`): boolean {
  if (res.statusCode === status) {
    t.pass(message)
    return true
  }
  let body: unknown = res.body
  try {
    body = res.json()
  } catch {}
  const logs = res.logs.map(({ level, msg, err, ...rest }) => ({ level: LEVELS[level] ?? level, msg, ...(err ? { err: err.message ?? err } : {}), ...pick(rest) }))
  // The failure points at the test's line, not at this function.
  const where: { stack?: string } = {}
  Error.captureStackTrace(where, expectStatus)
  t.fail(message, { found: res.statusCode, wanted: status, body, logs, stack: where.stack!.split('\n').slice(1).join('\n') })
  return false
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

// The fields of a log line worth reading in a test failure; the rest (pid, hostname, time) is noise.
function pick(line: LogLine) {
  const out: LogLine = {}
  for (const key of ['module', 'code', 'status', 'statusCode', 'url', 'method', 'reason']) if (line[key] !== undefined) out[key] = line[key]
  return out
}

const hasPluginFile = (dir: string) => fs.existsSync(path.join(dir, 'plugin.ts')) || fs.existsSync(path.join(dir, 'plugin.js'))

/** The module folder a file sits in: the nearest folder above it holding plugin.ts or plugin.js. */
function moduleFolderOf(file: string): string | undefined {
  for (let dir = path.dirname(path.resolve(file)); ; dir = path.dirname(dir)) {
    if (hasPluginFile(dir)) return dir
    if (path.dirname(dir) === dir) return undefined
  }
}

/** Module ids, and the folders (besides src/plugins) they are to be found in. */
function resolveModules(given: string[] | undefined): { ids: string[]; dirs: string[] } {
  const entries = given ?? []
  if (entries.length === 0) {
    const testFile = process.argv[1] ?? ''
    const folder = moduleFolderOf(testFile)
    if (!folder) throw new Error(`startModuleHost: no modules named, and ${testFile || 'this test'} is not inside a module folder (one holding plugin.ts)`)
    entries.push(folder)
  }
  const ids: string[] = []
  const dirs = moduleDirsFrom(envValue(process.env, 'PLINTH_MODULE_DIRS'))
  for (const entry of entries) {
    if (!entry.includes('/') && !entry.includes(path.sep)) {
      ids.push(entry)
      continue
    }
    const folder = path.resolve(entry)
    if (!hasPluginFile(folder)) throw new Error(`startModuleHost: ${folder} is not a module folder (it holds no plugin.ts or plugin.js)`)
    ids.push(path.basename(folder))
    const parent = path.dirname(folder)
    if (parent !== BUILTIN_MODULES_DIR && !dirs.includes(parent)) dirs.push(parent)
  }
  return { ids, dirs }
}

export async function startModuleHost(t: Teardown, options: ModuleHostOptions = {}): Promise<ModuleHost> {
  const { ids, dirs } = resolveModules(options.modules)
  const th = await startTestHost({
    env: { PLINTH_MODULES: ids.join(','), PLINTH_MODULE_DIRS: dirs.join(','), PLINTH_DEFAULT_MODULES: '*', ...options.env },
  })
  t.teardown(th.close)
  const missing = ids.filter((id) => !th.host.modules.some((m) => m.id === id))
  const unavailable = th.host.modules.filter((m) => m.status !== 'loaded')
  if (missing.length > 0 || unavailable.length > 0) {
    await th.close()
    const looked = [BUILTIN_MODULES_DIR, ...dirs].join(', ')
    throw new Error(
      [
        ...missing.map((id) => `module ${id} not found (looked in ${looked}; name a folder, or add its parent to PLINTH_MODULE_DIRS)`),
        ...unavailable.map((m) => `module ${m.id} ${m.status}: ${m.reason}`),
      ].join('; '),
    )
  }
  const tenants: Record<string, Tenant> = {}
  for (const code of options.tenants ?? ['acme']) tenants[code] = await th.createTenant(code)

  return Object.assign(th, {
    tenants,
    modules: ids,
    baselineDifferences: (module = ids[0]) => baselineDifferences(th.host.pool, th.host.modules.find((m) => m.id === module)!.dir),
    async client(client: ClientOptions): Promise<ModuleClient> {
      const headers: Record<string, string> = { 'x-tenant': client.tenant, ...client.headers }
      if (client.permissions) {
        const tenant = tenants[client.tenant] ?? (await th.host.tenants.get(client.tenant))
        const role = `test-${randomBytes(4).toString('hex')}`
        await th.host.roles.create(tenant, role, 'made by the module harness')
        for (const permission of client.permissions) await th.host.roles.grant(tenant, role, permission)
        const { key } = await th.host.createKey(client.tenant, role, [role])
        headers.authorization = `Bearer ${key}`
      }
      const prefix = `/api/plugins/${client.module ?? ids[0]}`
      const request: ModuleClient['request'] = async (method, path, { body, headers: extra } = {}) => {
        const res = await th.app.inject({ method, url: prefix + path, headers: { ...headers, ...extra }, ...(body === undefined ? {} : { payload: body as object }) })
        const reqId = res.headers['x-request-id']
        return Object.assign(res, { logs: th.logs.filter((line) => line.reqId !== undefined && line.reqId === reqId) })
      }
      return {
        request,
        get: (path, options) => request('GET', path, options),
        post: (path, body, options) => request('POST', path, { ...options, body }),
        put: (path, body, options) => request('PUT', path, { ...options, body }),
        patch: (path, body, options) => request('PATCH', path, { ...options, body }),
        delete: (path, options) => request('DELETE', path, options),
      }
    },
  })
}
