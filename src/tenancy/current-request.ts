// The request module code is running for, wherever in that code we are: ctx.log binds its request
// id, and ctx.withTenantTx joins its transaction instead of taking a second client.
import type { FastifyRequest } from 'fastify'
import { AsyncLocalStorage } from 'node:async_hooks'
import type { TenantTransaction } from './transaction.ts'

export interface RequestInProgress {
  request: FastifyRequest
  /** The request's transaction, opened now if its route has not opened it yet. */
  transaction(): Promise<TenantTransaction>
  /** Whether its response was sent: work after that runs in a transaction of its own. */
  answered(): boolean
}

export const currentRequest = new AsyncLocalStorage<RequestInProgress>()
