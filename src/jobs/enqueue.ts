// ctx.jobs.enqueue (host API 1.2): a job joins the transaction of the code that enqueues it (a
// request's, a job's, a withTenantTx's), so it is enqueued exactly when that transaction commits.
// One INSERT into public.sys_job_intake, sent without a round trip of its own: it rides with the
// transaction's next statement or its COMMIT. The tenant is the role the transaction runs as
// (migrations/public/010_jobs.sql); nothing the module passes can name another.
import { currentRequest } from '../tenancy/current-request.ts'
import { currentTransaction, type TenantTransaction } from '../tenancy/transaction.ts'
import { checkDefaults, JobDefinitionError, type JobDefinitions } from './definitions.ts'

export interface EnqueueOptions {
  /** When to run it (a Date or an ISO 8601 string); default now. */
  runAt?: Date | string
  /** Milliseconds from now; instead of runAt. */
  delay?: number
  /** At most one job waits under a key (per tenant, module and job): enqueueing again replaces its payload and time. */
  key?: string
  priority?: number
  maxAttempts?: number
}

const INTAKE = 'INSERT INTO public.sys_job_intake (module_id, job, payload, run_at, job_key, priority, max_attempts) VALUES ($1, $2, $3, $4, $5, $6, $7)'

/** How many of a payload's schema errors the message names. */
const ERRORS_NAMED = 3

export async function enqueue(definitions: JobDefinitions, moduleId: string, name: string, payload: unknown, options: EnqueueOptions = {}): Promise<void> {
  const where = `ctx.jobs.enqueue("${name}")`
  const definition = definitions.get(moduleId, name)
  if (!definition) throw new JobDefinitionError(`${where}: module ${moduleId} defines no job of that name (ctx.jobs.define)`)
  checkDefaults(where, options)
  const runAt = runAtOf(where, options)
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length === 0 || options.key.length > 200)) {
    throw new JobDefinitionError(`${where}: key must be a string of 1 to 200 characters`)
  }
  const value = payload === undefined ? null : payload
  if (definition.validator && !definition.validator.Check(value)) {
    const errors = [...definition.validator.Errors(value)].slice(0, ERRORS_NAMED).map((e) => `${e.instancePath || '/'} ${e.message}`)
    throw new JobDefinitionError(`${where}: the payload does not match the job's schema: ${errors.join('; ')}`)
  }
  let json: string
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw new JobDefinitionError(`${where}: the payload is not JSON: ${(err as Error).message}`)
  }
  const tx = await transactionHere()
  if (!tx) {
    throw new JobDefinitionError(`${where} needs a transaction to join: call it while handling a request, inside a job, or inside ctx.withTenantTx(tenant, ...)`)
  }
  tx.send(INTAKE, [moduleId, name, json, runAt, options.key ?? null, options.priority ?? definition.priority ?? null, options.maxAttempts ?? definition.maxAttempts ?? null])
}

/** The transaction the calling code runs in: its own (a job, withTenantTx), else its request's. */
async function transactionHere(): Promise<TenantTransaction | undefined> {
  const own = currentTransaction.getStore()
  if (own && !own.finished) return own
  const request = currentRequest.getStore()
  if (!request?.transaction || request.answered()) return undefined
  const tx = await request.transaction.open()
  return tx.finished ? undefined : tx
}

function runAtOf(where: string, { runAt, delay }: EnqueueOptions): Date | null {
  if (runAt !== undefined && delay !== undefined) throw new JobDefinitionError(`${where}: give runAt or delay, not both`)
  if (delay !== undefined) {
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) throw new JobDefinitionError(`${where}: delay must be a number of milliseconds, 0 or more`)
    return new Date(Date.now() + delay)
  }
  if (runAt === undefined) return null
  const at = runAt instanceof Date ? runAt : typeof runAt === 'string' ? new Date(runAt) : new Date(NaN)
  if (Number.isNaN(at.getTime())) throw new JobDefinitionError(`${where}: runAt must be a Date or an ISO 8601 time`)
  return at
}
