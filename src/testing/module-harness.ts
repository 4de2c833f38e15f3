// The harness a module's tap suite imports: a running host with just the modules it names, on a
// fresh database (PostgreSQL when DATABASE_URL is set, else embedded), its tenants created with
// those modules enabled, and clients that call the module's routes as a principal holding exactly
// the permissions the test names.
//
//   const h = await startModuleHost(t, { modules: ['inventory'], tenants: ['acme', 'beta'] })
//   const reader = await h.client({ tenant: 'acme', permissions: ['inventory.items.read'] })
//   const res = await reader.get('/items')          // GET /api/plugins/inventory/items
import type { LightMyRequestResponse } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { Tenant } from '../tenancy/registry.ts'
import { startTestHost, type TestHost } from './host.ts'

export interface ModuleHostOptions {
  /** Module ids to load (from src/plugins and PLINTH_PLUGIN_DIRS); nothing else loads. */
  modules: string[]
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
  headers?: Record<string, string>
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface ModuleClient {
  request(method: Method, path: string, body?: unknown): Promise<LightMyRequestResponse>
  get(path: string): Promise<LightMyRequestResponse>
  post(path: string, body?: unknown): Promise<LightMyRequestResponse>
  put(path: string, body?: unknown): Promise<LightMyRequestResponse>
  patch(path: string, body?: unknown): Promise<LightMyRequestResponse>
  delete(path: string): Promise<LightMyRequestResponse>
}

export interface ModuleHost extends TestHost {
  tenants: Record<string, Tenant>
  /** A caller with a real API key of the tenant, whose one role grants exactly `permissions`. */
  client(options: ClientOptions): Promise<ModuleClient>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export async function startModuleHost(t: Teardown, options: ModuleHostOptions): Promise<ModuleHost> {
  const th = await startTestHost({
    env: { PLINTH_PLUGINS: options.modules.join(','), PLINTH_DEFAULT_PLUGINS: '*', ...options.env },
  })
  t.teardown(th.close)
  const unavailable = th.host.modules.filter((m) => m.status !== 'loaded')
  if (unavailable.length > 0) {
    throw new Error(`modules not loaded: ${unavailable.map((m) => `${m.id} ${m.status}: ${m.reason}`).join('; ')}`)
  }
  const tenants: Record<string, Tenant> = {}
  for (const code of options.tenants ?? ['acme']) tenants[code] = await th.createTenant(code)

  return Object.assign(th, {
    tenants,
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
      const prefix = `/api/plugins/${client.module ?? options.modules[0]}`
      const request = (method: Method, path: string, body?: unknown) =>
        Promise.resolve(th.app.inject({ method, url: prefix + path, headers, ...(body === undefined ? {} : { payload: body as object }) }))
      return {
        request,
        get: (path) => request('GET', path),
        post: (path, body) => request('POST', path, body),
        put: (path, body) => request('PUT', path, body),
        patch: (path, body) => request('PATCH', path, body),
        delete: (path) => request('DELETE', path),
      }
    },
  })
}
