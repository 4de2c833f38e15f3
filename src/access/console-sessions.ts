// The console's sessions, kept server-side (public.console_session): the cookie holds the
// session's id and a 32-byte secret, and the table the secret's SHA-256, so a copy of the table
// signs nobody in. A session is live until sign-out, a revoke, or `idleMs` without a request;
// each use moves its idle clock on. Sign-in, sign-out and revokes are audited with the change.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type pg from 'pg'
import { appendAudit, type AuditEvent } from '../platform/audit/append.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'
import type { Actor } from '../platform/audit/actor.ts'

export interface ConsoleSession {
  id: string
  operator: string
  clientAddress: string | null
  userAgent: string | null
  createdAt: string
  lastSeenAt: string
  endedAt: string | null
  endedWhy: string | null
}

const COLUMNS = `id, operator, client_address AS "clientAddress", user_agent AS "userAgent", created_at AS "createdAt",
  last_seen_at AS "lastSeenAt", ended_at AS "endedAt", ended_why AS "endedWhy"`

const sha256 = (text: string) => createHash('sha256').update(text).digest()

/** The actor a session's changes are audited as: its operator, and which session. */
export function sessionActor(session: Pick<ConsoleSession, 'id' | 'operator'>, request: { id: string; ip: string }): Actor {
  return { kind: 'console', id: `${session.operator} (session ${session.id})`, requestId: request.id, clientAddress: request.ip }
}

export class ConsoleSessions {
  constructor(
    private readonly pool: pg.Pool,
    /** How long a session lives without a request (PLINTH_CONSOLE_IDLE_MINUTES). */
    readonly idleMs: number,
  ) {}

  /** Opens a session for an operator who proved the admin token; the cookie value is in the result, once. */
  async open(operator: string, from: { id: string; ip: string; userAgent?: string }): Promise<{ session: ConsoleSession; cookie: string }> {
    const id = randomBytes(9).toString('base64url')
    const secret = randomBytes(32).toString('base64url')
    const session = await inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<ConsoleSession>(
        `INSERT INTO public.console_session (id, secret_hash, operator, client_address, user_agent) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
        [id, sha256(secret).toString('hex'), operator, from.ip, from.userAgent?.slice(0, 300) ?? null],
      )
      await appendAudit(client, { action: 'console.signed-in', target: id, changes: { operator } }, sessionActor(rows[0], from))
      return rows[0]
    })
    return { session: normalise(session), cookie: `${id}.${secret}` }
  }

  /** The live session a cookie names, its idle clock moved on; none for a cookie that names none. */
  async find(cookie: string | undefined): Promise<ConsoleSession | undefined> {
    const match = /^([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? '')
    if (!match) return undefined
    const { rows } = await this.pool.query(
      `UPDATE public.console_session SET last_seen_at = now()
        WHERE id = $1 AND ended_at IS NULL AND last_seen_at > now() - make_interval(secs => $2)
        RETURNING ${COLUMNS}, secret_hash AS "secretHash"`,
      [match[1], this.idleMs / 1000],
    )
    const row = rows[0]
    if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), sha256(match[2]))) return undefined
    const { secretHash: _, ...session } = row
    return normalise(session)
  }

  /** Ends a session: at its own sign-out, or revoked by an operator. */
  async end(id: string, why: 'signed out' | 'revoked', actor?: Actor): Promise<ConsoleSession | undefined> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<ConsoleSession>(
        `UPDATE public.console_session SET ended_at = now(), ended_why = $2 WHERE id = $1 AND ended_at IS NULL RETURNING ${COLUMNS}`,
        [id, why],
      )
      if (!rows[0]) return undefined
      const event: AuditEvent = { action: why === 'revoked' ? 'console.session-revoked' : 'console.signed-out', target: id, changes: { operator: rows[0].operator } }
      await appendAudit(client, event, actor)
      return normalise(rows[0])
    })
  }

  /** Ends every live session (`plinth console sessions revoke --all`); returns them. */
  async endAll(): Promise<ConsoleSession[]> {
    const ended: ConsoleSession[] = []
    for (const session of await this.list({ live: true })) {
      const done = await this.end(session.id, 'revoked')
      if (done) ended.push(done)
    }
    return ended
  }

  /** Sessions, newest first: the live ones, or every one kept. */
  async list({ live }: { live: boolean }): Promise<ConsoleSession[]> {
    const { rows } = await this.pool.query(
      `SELECT ${COLUMNS} FROM public.console_session
        ${live ? 'WHERE ended_at IS NULL AND last_seen_at > now() - make_interval(secs => $1)' : 'WHERE $1::float8 IS NOT NULL'}
        ORDER BY created_at DESC LIMIT 1000`,
      [this.idleMs / 1000],
    )
    return rows.map(normalise)
  }
}

function normalise(row: any): ConsoleSession {
  const time = (value: unknown) => (value ? new Date(value as string).toISOString() : null)
  return { ...row, createdAt: time(row.createdAt)!, lastSeenAt: time(row.lastSeenAt)!, endedAt: time(row.endedAt) }
}
