// The request module code is running for, wherever in that code we are: ctx.log binds its request
// id, and ctx.withTenantTx joins its transaction instead of taking a second client.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Tenant } from './registry.ts'
import type { RequestTransaction } from './transaction.ts'

export interface RequestInProgress {
  /** The request's tenant; none on an open route (a module's /health). */
  tenant: Tenant | null
  /** The request's transaction; none where it has no tenant. */
  transaction: RequestTransaction | undefined
  /** The request's logger (its request id bound). */
  log: { info(meta: object, msg: string): void }
  /** Whether its response was sent: work after that runs in a transaction of its own. */
  answered(): boolean
}

export const currentRequest = new AsyncLocalStorage<RequestInProgress>()
