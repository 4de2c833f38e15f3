// Support tickets: what `inventory` does not show. Plain SQL instead of a query builder, three
// migration files, background work through ctx.withTenantTx and through a job (host API 1.2: a
// reminder on tickets left open, hourly and on demand), its own health check, nav items. Written
// against the module contract only.
import { sql } from 'drizzle-orm'
import { defineModule } from 'plinth/module'
import { Type } from 'typebox'

export const permissions = ['tickets.tickets.read', 'tickets.tickets.write', 'tickets.tickets.close', 'tickets.comments.write']

const Ticket = Type.Object({
  id: Type.String(),
  title: Type.String(),
  status: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  priority: Type.Union([Type.Literal('low'), Type.Literal('normal'), Type.Literal('high')]),
  comments: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  closedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
const TicketInput = Type.Object(
  { title: Type.String({ minLength: 1, maxLength: 200 }), priority: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('normal'), Type.Literal('high')])) },
  { additionalProperties: false },
)
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,18}$' }) })

// What the background sweeps last did: the health check reports a sweep that failed.
const sweeps = { running: 0, lastError: null as string | null }

// Timestamps as RFC 3339 in UTC (what `format: 'date-time'` documents, and what JSON.stringify
// makes of a Date), not PostgreSQL's text form: raw SQL through req.db returns them as text.
const rfc3339 = (column: string) => sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)

const SELECT_TICKETS = sql`
  SELECT t.id::text, t.title, t.status, t.priority, ${rfc3339('t.created_at')} AS "createdAt", ${rfc3339('t.closed_at')} AS "closedAt",
         (SELECT count(*) FROM ticket_comments c WHERE c.ticket_id = t.id)::int AS comments
    FROM tickets t`

export default defineModule({
  meta: { id: 'tickets', name: 'Support tickets', version: '1.2.0', api: '^1.2.0' },

  async register(ctx) {
    // One reminder comment on each ticket open for longer than olderThanSeconds, in the job's own
    // tenant transaction: the comments and reminded_at commit together, so none is reminded twice.
    ctx.jobs.define(
      'remind-stale',
      async (payload, job) => {
        const { rows } = await job.db.execute(sql`
          WITH due AS (
            UPDATE tickets SET reminded_at = now()
             WHERE status = 'open' AND reminded_at IS NULL AND created_at <= now() - make_interval(secs => ${payload.olderThanSeconds})
            RETURNING id)
          INSERT INTO ticket_comments (ticket_id, author, body)
          SELECT id, 'tickets:reminder', 'Reminder: this ticket is still open.' FROM due
          RETURNING ticket_id`)
        if (rows.length > 0) job.log.info({ reminded: rows.length }, 'reminded of open tickets')
      },
      { schema: Type.Object({ olderThanSeconds: Type.Integer({ minimum: 0 }) }), maxAttempts: 3 },
    )
    // Every hour, for every tenant with the module enabled: tickets open for a day.
    ctx.jobs.schedule('remind-stale', '0 * * * *', { payload: { olderThanSeconds: 86_400 } })

    ctx.router.post(
      '/tickets/remind-stale',
      {
        schema: { body: Type.Object({ olderThanSeconds: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), response: { 202: Type.Object({ queued: Type.Boolean() }) } },
        summary: 'Remind of tickets open longer than a given age, now, in the background',
      },
      ctx.rbac.require('tickets.tickets.close'),
      async (req, res) => {
        // In this request's transaction: queued exactly when the 202 is sent.
        await ctx.jobs.enqueue('remind-stale', { olderThanSeconds: req.body.olderThanSeconds })
        res.status(202).json({ queued: true })
      },
    )

    ctx.router.get(
      '/tickets',
      { schema: { querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')])) }), response: { 200: Type.Object({ tickets: Type.Array(Ticket) }) } }, summary: 'List tickets' },
      ctx.rbac.require('tickets.tickets.read'),
      async (req) => {
        const filter = req.query.status ? sql` WHERE t.status = ${req.query.status}` : sql``
        const { rows } = await req.db.execute(sql`${SELECT_TICKETS}${filter} ORDER BY t.id`)
        return { tickets: rows }
      },
    )

    ctx.router.post(
      '/tickets',
      { schema: { body: TicketInput, response: { 201: Ticket } }, summary: 'Open a ticket' },
      ctx.rbac.require('tickets.tickets.write'),
      async (req, res) => {
        const { rows } = await req.db.execute(
          sql`INSERT INTO tickets (title, priority) VALUES (${req.body.title}, ${req.body.priority ?? 'normal'}) RETURNING id`,
        )
        const { rows: [ticket] } = await req.db.execute(sql`${SELECT_TICKETS} WHERE t.id = ${rows[0].id}`)
        res.status(201).json(ticket)
      },
    )

    ctx.router.post(
      '/tickets/:id/comments',
      {
        schema: {
          params: IdParams,
          body: Type.Object({ body: Type.String({ minLength: 1, maxLength: 5000 }) }, { additionalProperties: false }),
          response: { 201: Type.Object({ id: Type.String(), ticketId: Type.String(), author: Type.String(), body: Type.String() }) },
        },
        summary: 'Comment on a ticket',
      },
      ctx.rbac.require('tickets.comments.write'),
      async (req, res) => {
        const { rows } = await req.db.execute(sql`
          INSERT INTO ticket_comments (ticket_id, author, body)
          SELECT id, ${req.principal!.id}, ${req.body.body} FROM tickets WHERE id = ${req.params.id}
          RETURNING id::text, ticket_id::text AS "ticketId", author, body`)
        if (rows.length === 0) throw Object.assign(new Error('No ticket has this id.'), { status: 404 })
        res.status(201).json(rows[0])
      },
    )

    // Closing stale tickets can take a while: answer at once, do it in the background, in a
    // transaction of its own (ctx.withTenantTx), after this request's transaction has committed.
    ctx.router.post(
      '/tickets/close-stale',
      {
        schema: { body: Type.Object({ olderThanSeconds: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), response: { 202: Type.Object({ queued: Type.Boolean() }) } },
        summary: 'Close open tickets older than a given age, in the background',
      },
      ctx.rbac.require('tickets.tickets.close'),
      async (req, res) => {
        const tenantId = req.tenant.id
        const { olderThanSeconds } = req.body
        res.status(202).json({ queued: true })
        sweeps.running++
        setImmediate(async () => {
          try {
            const closed = await ctx.withTenantTx(tenantId, async (db) => {
              const { rows } = await db.execute(sql`
                UPDATE tickets SET status = 'closed', closed_at = now()
                 WHERE status = 'open' AND created_at <= now() - make_interval(secs => ${olderThanSeconds})
                RETURNING id`)
              return rows.length
            })
            sweeps.lastError = null
            ctx.log('stale tickets closed', { tenantId, closed })
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err)
            sweeps.lastError = message
            ctx.log('closing stale tickets failed', { tenantId, error: message })
          } finally {
            sweeps.running--
          }
        })
      },
    )
  },

  // GET /api/plugins/tickets/health: unhealthy while the last background sweep failed.
  async health() {
    return sweeps.lastError === null
  },
})
