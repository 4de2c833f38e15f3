// The `ctx` each module's register(ctx) receives (contract.md): its router, its guards, its
// tenant transactions, its tenants and its log. Everything a module calls through ctx lands here
// or below (access, tenancy); nothing of it reaches back into the HTTP layer or the host.
import type { Logger } from 'pino'
import { requirePermission } from '../access/require.ts'
import type { Guard, ModuleContext, ModuleTenant } from '../contract/contract.ts'
import { Compile } from 'typebox/compile'
import type { JobDefinitions } from '../jobs/definitions.ts'
import { enqueue } from '../jobs/enqueue.ts'
import { currentJob } from '../jobs/runner.ts'
import { tracing } from '../platform/tracing.ts'
import { currentRequest } from '../tenancy/current-request.ts'
import type { TenantRegistry } from '../tenancy/registry.ts'
import type { TenantModules } from '../tenancy/tenant-modules.ts'
import type { TenantPool } from '../tenancy/transaction.ts'
import { withTenantTx } from '../tenancy/with-tenant-tx.ts'
import type { ContextFactory } from './loader.ts'

/** What a module's ctx works with. */
export interface ContextServices {
  log: Logger
  tenantPool: TenantPool
  registry: TenantRegistry
  tenantModules: TenantModules
  jobDefinitions: JobDefinitions
}

/** Makes each module's ctx on these services (loader.ts's registerModule calls it once a module). */
export function moduleContexts(services: ContextServices): ContextFactory {
  return (record, router, declare) => {
    const moduleLog = services.log.child({ module: record.id })
    const module = { id: record.id, enablement: services.tenantModules }
    return {
      router,
      rbac: {
        require(permission: string) {
          declare(permission)
          // The contract's req is the Fastify request, narrowed as a module route sees it.
          return requirePermission(permission) as unknown as Guard
        },
      },
      withTenantTx: (tenantIdOrCode, work) =>
        tracing
          ? tracing.inSpan('withTenantTx', { 'plinth.module': record.id, 'plinth.tenant': tenantIdOrCode }, () => withTenantTx(services.tenantPool, services.registry, tenantIdOrCode, work, module))
          : withTenantTx(services.tenantPool, services.registry, tenantIdOrCode, work, module),
      // Host API 1.1: where background work runs.
      tenants: async () => enabledTenants(services, record.id),
      // Host API 1.2.
      jobs: {
        define: (name, handler, options) => services.jobDefinitions.define(record.id, name, handler, options, Compile),
        enqueue: (name, payload, options) => enqueue(services.jobDefinitions, record.id, name, payload, options),
        schedule: (name, cron, options) => services.jobDefinitions.schedule(record.id, name, cron, options),
      },
      trace: {
        inSpan: (name, work, attributes) => {
          if (!tracing) return work()
          const tenant = currentRequest.getStore()?.tenant?.code ?? currentJob.getStore()?.tenant
          return tracing.inSpan(name, { ...attributes, 'plinth.module': record.id, 'plinth.tenant': tenant }, work)
        },
      },
      log(msg, meta) {
        const inProgress = currentRequest.getStore()
        if (inProgress) inProgress.log.info({ module: record.id, ...meta }, msg)
        else moduleLog.info(meta ?? {}, msg)
      },
    } satisfies ModuleContext
  }
}

/** The active tenants that have the module enabled, with its migrations applied there. */
function enabledTenants({ registry, tenantModules }: ContextServices, moduleId: string): ModuleTenant[] {
  return registry
    .list()
    .filter((tenant) => {
      const state = tenantModules.state(tenant.id, moduleId)
      return tenant.status === 'active' && state?.enabled === true && state.status === 'ready'
    })
    .map(({ id, code, name, schema }) => ({ id, code, name, schema }))
}
