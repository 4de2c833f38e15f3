// Appending to the audit trail, inside the caller's transaction: the row commits with the change
// it describes, or not at all. Each row's hash is SHA-256 over the previous row's hash, its
// sequence number and its canonical form (canonicalEvent); verify.ts recomputes it in Node, so the
// check owes nothing to code stored in the database it checks.
import type pg from 'pg'
import { inTransaction } from '../db/platform-transaction.ts'
import { currentActor, type Actor } from './actor.ts'

export interface AuditEvent {
  /** `<object>.<verb in the past>`: tenant.created, key.revoked, role.granted... */
  action: string
  /** What was acted on, by its name: a tenant's code, a key's id, a role, a module. */
  target?: string | null
  tenant?: string | null
  module?: string | null
  outcome?: 'success' | 'failure'
  /** What changed: names and values, never a secret or a hash of one. */
  changes?: Record<string, unknown>
}

/** The columns a row is stored with, as verify.ts reads them back. */
export interface AuditRow {
  seq: number
  at: string
  actorKind: string
  actorId: string | null
  action: string
  target: string | null
  tenant: string | null
  module: string | null
  outcome: 'success' | 'failure'
  requestId: string | null
  clientAddress: string | null
  changes: Record<string, unknown>
  prevHash: string
  hash: string
}

export const GENESIS_HASH = '0'.repeat(64)

/**
 * A row's content as one text, the same whether built from an event before it is stored or from
 * the row read back: a JSON array in a fixed order, `changes` with its keys sorted at every depth.
 * The sequence number and the previous hash are not in it: the hash takes them apart (chainHash).
 */
export function canonicalEvent(row: Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>): string {
  return JSON.stringify([...CANONICAL_FIELDS.map((field) => row[field]), sortKeys(row.changes)])
}

/** The fields of the canonical form, in its order (then `changes`); APPEND's columns follow it. */
const CANONICAL_FIELDS = ['at', 'actorKind', 'actorId', 'action', 'target', 'tenant', 'module', 'outcome', 'requestId', 'clientAddress'] as const

/** What a row's hash covers: the text SQL hashes in APPEND, built the same way. */
export function chainInput(prevHash: string, seq: number | string, canonical: string): string {
  return `${prevHash}\n${seq}\n${canonical}`
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  )
}

/**
 * One statement: the head row moves on (its row lock orders appends, and is held to COMMIT), and
 * the row is inserted with the hash SQL computes from the head's old hash. SET expressions all
 * read the head as it was; in READ COMMITTED an UPDATE that waited for the lock works on the row
 * as the previous append committed it, so no two rows ever take one place in the chain.
 */
const APPEND = `WITH head AS (
    UPDATE public.audit_head
       SET seq = seq + 1,
           prev_hash = hash,
           hash = encode(sha256(convert_to(hash || E'\\n' || (seq + 1)::text || E'\\n' || $1::text, 'UTF8')), 'hex')
     RETURNING seq, prev_hash, hash)
  INSERT INTO public.audit_event (seq, at, actor_kind, actor_id, action, target, tenant, module, outcome, request_id, client_address, changes, prev_hash, hash)
  SELECT head.seq, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, head.prev_hash, head.hash FROM head`

type Queryable = Pick<pg.PoolClient, 'query'>

/**
 * Appends `event`, by the actor in scope (actor.ts), to the trail in `client`'s transaction. Call
 * it last in the transaction, right before COMMIT: from this statement on, every other audited
 * change waits for this transaction to end.
 */
export async function appendAudit(client: Queryable, event: AuditEvent, actor: Actor = currentActor()): Promise<void> {
  const changes = JSON.parse(JSON.stringify(event.changes ?? {})) as Record<string, unknown>
  const row = {
    at: new Date().toISOString(),
    actorKind: actor.kind,
    actorId: actor.id,
    action: event.action,
    target: event.target ?? null,
    tenant: event.tenant ?? null,
    module: event.module ?? null,
    outcome: event.outcome ?? 'success',
    requestId: actor.requestId ?? null,
    clientAddress: actor.clientAddress ?? null,
    changes,
  }
  await client.query(APPEND, [canonicalEvent(row), ...CANONICAL_FIELDS.map((field) => row[field]), JSON.stringify(sortKeys(changes))])
}

/**
 * An event that is no change's: an attempt that failed and rolled back (a migration, a sign-in), or
 * a change that cannot run in a transaction (a Citus move), audited once it is done. Its own transaction.
 */
export function appendAuditAlone(pool: pg.Pool, event: AuditEvent, actor: Actor = currentActor()): Promise<void> {
  return inTransaction(pool, (client) => appendAudit(client, event, actor))
}
