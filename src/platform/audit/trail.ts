// Reading the audit trail (filters, keyset paging, export pages) and pruning it. Appends are
// append.ts's; the check of the chain is verify.ts's.
import type pg from 'pg'
import { HttpProblem } from '../../problems.ts'
import { inTransaction } from '../db/platform-transaction.ts'
import { appendAudit, type AuditRow } from './append.ts'

export interface AuditFilter {
  /** `<kind>` or `<kind>:<id>`: admin-token, console:ops@…, cli:root, system… */
  actor?: string
  /** An action (`tenant.created`) or every action of an object (`tenant`). */
  action?: string
  tenant?: string
  since?: Date
  until?: Date
}

export interface AuditPage {
  events: AuditRow[]
  /** The cursor of the next (older) page; null on the last one. */
  next: string | null
}

export interface AuditHead {
  seq: number
  hash: string
  /** Where the kept chain starts: the last row a prune removed, with its hash. */
  anchorSeq: number
  anchorHash: string
}

const COLUMNS = `seq, at, actor_kind AS "actorKind", actor_id AS "actorId", action, target, tenant, module, outcome,
  request_id AS "requestId", client_address AS "clientAddress", changes, prev_hash AS "prevHash", hash`

export function toAuditRow(row: any): AuditRow {
  return { ...row, seq: Number(row.seq), at: new Date(row.at).toISOString() }
}

/** The WHERE of a filter, its parameters numbered from `first`. */
function where(filter: AuditFilter, first = 1): { sql: string; params: unknown[] } {
  const clauses: string[] = []
  const params: unknown[] = []
  const add = (clause: (p: string) => string, value: unknown) => {
    params.push(value)
    clauses.push(clause(`$${first + params.length - 1}`))
  }
  if (filter.actor) {
    const [kind, ...id] = filter.actor.split(':')
    add((p) => `actor_kind = ${p}`, kind)
    if (id.length > 0) add((p) => `actor_id = ${p}`, id.join(':'))
  }
  if (filter.action) {
    if (filter.action.includes('.')) add((p) => `action = ${p}`, filter.action)
    else add((p) => `action LIKE ${p}`, `${filter.action.replace(/[\\%_]/g, '\\$&')}.%`)
  }
  if (filter.tenant) add((p) => `tenant = ${p}`, filter.tenant)
  if (filter.since) add((p) => `at >= ${p}`, filter.since)
  if (filter.until) add((p) => `at < ${p}`, filter.until)
  return { sql: clauses.length > 0 ? clauses.join(' AND ') : 'true', params }
}

function badCursor() {
  return new HttpProblem(400, 'VALIDATION_FAILED', 'The request is invalid.', { errors: [{ path: '/cursor', message: 'must be a cursor a previous page returned' }] })
}

/** The newest events matching `filter`, `limit` at a time, older pages through `cursor` (a sequence number). */
export async function listAudit(db: Pick<pg.Pool, 'query'>, filter: AuditFilter, { limit = 50, cursor }: { limit?: number; cursor?: string | null } = {}): Promise<AuditPage> {
  if (cursor != null && !/^[1-9][0-9]{0,17}$/.test(cursor)) throw badCursor()
  const { sql, params } = where(filter)
  const before = cursor ? `AND seq < $${params.length + 1}` : ''
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM public.audit_event WHERE ${sql} ${before} ORDER BY seq DESC LIMIT ${Math.max(1, Math.min(1000, limit)) + 1}`,
    cursor ? [...params, cursor] : params,
  )
  const events = rows.slice(0, limit).map(toAuditRow)
  return { events, next: rows.length > limit ? String(events.at(-1)!.seq) : null }
}

/** Every event matching `filter`, oldest first, a page of `pageSize` per query: memory stays flat whatever the range. */
export async function* auditInOrder(db: Pick<pg.Pool, 'query'>, filter: AuditFilter = {}, pageSize = 1000): AsyncGenerator<AuditRow> {
  const { sql, params } = where(filter, 2)
  let after = '0'
  for (;;) {
    const { rows } = await db.query(`SELECT ${COLUMNS} FROM public.audit_event WHERE seq > $1 AND ${sql} ORDER BY seq LIMIT ${pageSize}`, [after, ...params])
    for (const row of rows) yield toAuditRow(row)
    if (rows.length < pageSize) return
    after = rows.at(-1).seq
  }
}

export async function auditHead(db: Pick<pg.Pool, 'query'>): Promise<AuditHead> {
  const { rows } = await db.query(`SELECT seq::text AS seq, hash, anchor_seq::text AS "anchorSeq", anchor_hash AS "anchorHash" FROM public.audit_head`)
  const head = rows[0]
  return { seq: Number(head.seq), hash: head.hash, anchorSeq: Number(head.anchorSeq), anchorHash: head.anchorHash }
}

export interface PruneResult {
  removed: number
  /** The last row removed; the kept chain starts right after it. */
  through: number | null
}

/**
 * Removes the events older than `before`, sealing first, in one transaction of the caller's: an
 * `audit.pruned` event records the last row removed and its hash, the head's anchor moves to it
 * (the trigger of migration public/008 lets rows at or before the anchor go, and no others), then
 * the rows go. What is kept still verifies: from the anchor, and the anchor against the seal.
 */
export function pruneAudit(pool: pg.Pool, before: Date): Promise<PruneResult> {
  return inTransaction(pool, (client) => pruneInTransaction(client, before))
}

async function pruneInTransaction(client: pg.PoolClient, before: Date): Promise<PruneResult> {
  await client.query('SELECT 1 FROM public.audit_head FOR UPDATE')
  // Up to the newest row older than `before`: hosts' clocks differ, so a row or two past it may go too.
  const { rows } = await client.query(
    `WITH last AS (SELECT seq, hash FROM public.audit_event WHERE at < $1 ORDER BY seq DESC LIMIT 1)
     SELECT last.seq::text AS seq, last.hash, (SELECT count(*)::int FROM public.audit_event e WHERE e.seq <= last.seq) AS removed FROM last`,
    [before],
  )
  const last = rows[0]
  if (!last) return { removed: 0, through: null }
  await appendAudit(client, { action: 'audit.pruned', changes: { before: before.toISOString(), through: Number(last.seq), throughHash: last.hash, removed: last.removed } })
  await client.query('UPDATE public.audit_head SET anchor_seq = $1, anchor_hash = $2', [last.seq, last.hash])
  await client.query('DELETE FROM public.audit_event WHERE seq <= $1', [last.seq])
  return { removed: last.removed, through: Number(last.seq) }
}
