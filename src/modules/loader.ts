// Runs each loaded module's register(ctx), bounded in time, and compiles the routes it declared.
// A module that throws or never finishes is `failed`; one that requires a permission it did not
// declare is `refused`.
import type { ModuleContext } from '../contract/contract.ts'
import type { ModuleRecord } from './discovery.ts'
import { collectingRouter } from './express/router.ts'
import { within } from '../platform/within.ts'

export type ContextFactory = (record: ModuleRecord, router: ModuleContext['router'], requirePermission: (p: string) => void) => ModuleContext

/** Runs the module's register(ctx), bounded in time, and compiles the routes it declared. */
export async function registerModule(record: ModuleRecord, makeContext: ContextFactory, timeoutMs: number) {
  if (record.status !== 'loaded' || !record.definition) return
  const { router, compile } = collectingRouter()
  const declared = new Set(record.manifest!.permissions)
  const undeclared: string[] = []
  const ctx = makeContext(record, router as unknown as ModuleContext['router'], (permission) => {
    if (!declared.has(permission)) undeclared.push(permission)
  })
  record.ctx = ctx
  try {
    await within(timeoutMs, 'register(ctx)', () => record.definition!.register(ctx))
    record.routes = compile()
  } catch (err) {
    record.status = 'failed'
    record.reason = `register: ${(err as Error).message}`
    return
  }
  if (undeclared.length > 0) {
    record.status = 'refused'
    record.reason = `undeclared-permission (permissions): rbac.require("${undeclared[0]}") names a permission the module does not declare`
  }
}
