// `plinth audit verify`: recomputes the chain in Node from the rows as stored, and names the first
// link that does not hold. What each tampering looks like here:
// - a row edited, or two rows' places swapped: its hash no longer matches its content;
// - a row inserted with a hash recomputed to match: the next row's prev_hash does not link to it;
// - a row deleted: a gap in the sequence;
// - the newest rows deleted, or the table emptied: the chain ends before the head; and if the head
//   was rewritten too, before a head the log recorded (`--head <seq>:<hash>`, from a checkpoint line);
// - old rows deleted without a prune: the kept chain does not start at the anchor, or the anchor
//   does not match the last seal.
import { createHash } from 'node:crypto'
import type pg from 'pg'
import { canonicalEvent, chainInput, type AuditRow } from './append.ts'
import { auditHead, auditInOrder } from './trail.ts'

export interface VerifyReport {
  ok: boolean
  /** Rows whose links were checked. */
  checked: number
  head: { seq: number; hash: string }
  /** The first link that does not hold: its sequence number and what is wrong there. */
  broken?: { seq: number; problem: string }
}

export function rowHash(row: AuditRow): string {
  return createHash('sha256').update(chainInput(row.prevHash, row.seq, canonicalEvent(row))).digest('hex')
}

export async function verifyAudit(db: Pick<pg.Pool, 'query'>, witness?: { seq: number; hash: string }): Promise<VerifyReport> {
  const head = await auditHead(db)
  let expected = { seq: head.anchorSeq + 1, prevHash: head.anchorHash }
  let checked = 0
  let lastSeal: Record<string, unknown> | undefined
  let witnessSeen = false
  const report = (seq: number, problem: string): VerifyReport => ({ ok: false, checked, head: { seq: head.seq, hash: head.hash }, broken: { seq, problem } })
  for await (const row of auditInOrder(db)) {
    if (row.seq > expected.seq) {
      const gap = row.seq - 1 === expected.seq ? `row ${expected.seq} is missing` : `rows ${expected.seq} to ${row.seq - 1} are missing`
      return report(expected.seq, `${gap} (deleted)`)
    }
    if (row.prevHash !== expected.prevHash) return report(row.seq, `row ${row.seq} does not link to the row before it (prev_hash differs): a row was inserted, replaced or removed before it`)
    if (rowHash(row) !== row.hash) return report(row.seq, `row ${row.seq}'s content does not match its hash: it was edited, or moved from another place`)
    if (witness && row.seq === witness.seq) {
      if (row.hash !== witness.hash) return report(row.seq, `row ${row.seq}'s hash differs from the head the log recorded (${witness.hash})`)
      witnessSeen = true
    }
    if (row.action === 'audit.pruned') lastSeal = row.changes
    expected = { seq: row.seq + 1, prevHash: row.hash }
    checked++
  }
  const end = expected.seq - 1
  if (end !== head.seq || expected.prevHash !== head.hash) {
    return report(end + 1, `the chain ends at row ${end}, but its head is at row ${head.seq}: the newest rows were removed`)
  }
  if (witness && !witnessSeen && witness.seq > head.anchorSeq) {
    return report(Math.min(witness.seq, end + 1), `the log recorded a head at row ${witness.seq}, and the chain ends at row ${end}: the newest rows were removed, and the head rewritten`)
  }
  if (head.anchorSeq > 0 && (lastSeal?.through !== head.anchorSeq || lastSeal?.throughHash !== head.anchorHash)) {
    return report(head.anchorSeq, `rows up to ${head.anchorSeq} were removed without a prune that sealed them`)
  }
  return { ok: true, checked, head: { seq: head.seq, hash: head.hash } }
}
