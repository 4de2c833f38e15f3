import t from 'tap'
import { startModuleHost } from 'plinth/testing'

const h = await startModuleHost(t, { tenants: ['acme', 'beta'] })
// RFC 3339 in UTC, as inventory and the host answer: not PostgreSQL's text form (`2026-12-06 09:41:08.266205+00`).
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const agent = await h.client({ tenant: 'acme', permissions: ['tickets.tickets.read', 'tickets.tickets.write', 'tickets.comments.write'] })
const lead = await h.client({ tenant: 'acme', permissions: ['tickets.tickets.read', 'tickets.tickets.close'] })

t.test('its migrations ran in each tenant schema', async (t) => {
  const { rows } = await h.host.pool.query(
    `SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('tickets', 'ticket_comments') ORDER BY 1, 2`,
  )
  t.same(rows.map((r) => `${r.table_schema}.${r.table_name}`), ['t_acme.ticket_comments', 't_acme.tickets', 't_beta.ticket_comments', 't_beta.tickets'])
})

t.test('its baseline, with the file after it, makes the schema its migration files make', async (t) => {
  t.same(await h.baselineDifferences(), [])
})

t.test('open, comment, list', async (t) => {
  const opened = await agent.post('/tickets', { title: 'Printer on fire', priority: 'high' })
  t.equal(opened.statusCode, 201)
  t.match(opened.json(), { id: String, title: 'Printer on fire', status: 'open', priority: 'high', comments: 0, createdAt: ISO_TIME, closedAt: null })
  const id = opened.json().id
  const comment = await agent.post(`/tickets/${id}/comments`, { body: 'Extinguisher applied.' })
  t.equal(comment.statusCode, 201)
  t.match(comment.json(), { ticketId: id, body: 'Extinguisher applied.', author: /^key:[a-z0-9]{12}$/ })
  t.equal((await agent.post('/tickets/999999/comments', { body: 'x' })).statusCode, 404)
  const list = await agent.get('/tickets')
  t.match(list.json().tickets, [{ id, comments: 1, createdAt: ISO_TIME }])
  const beta = await h.client({ tenant: 'beta', permissions: ['tickets.tickets.read'] })
  t.same((await beta.get('/tickets')).json(), { tickets: [] }, 'beta sees none of acme')
})

t.test('closing stale tickets runs in the background, in its own transaction', async (t) => {
  await agent.post('/tickets', { title: 'Old one' })
  t.equal((await agent.post('/tickets/close-stale', { olderThanSeconds: 0 })).statusCode, 403, 'agents may not close')
  const queued = await lead.post('/tickets/close-stale', { olderThanSeconds: 0 })
  t.equal(queued.statusCode, 202)
  let open = -1
  for (let i = 0; i < 50 && open !== 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    open = (await lead.get('/tickets?status=open')).json().tickets.length
  }
  t.equal(open, 0, 'every open ticket was closed by the background job')
  t.match((await lead.get('/tickets?status=closed')).json().tickets[0], { status: 'closed', closedAt: ISO_TIME })
})

t.test('its own health check: 503 while the last background sweep failed', async (t) => {
  const health = async () => {
    const res = await h.app.inject({ url: '/api/plugins/tickets/health' })
    return [res.statusCode, res.json()]
  }
  t.same(await health(), [200, { ok: true }])
  const waitFor = async (expected: unknown[]) => {
    let got = await health()
    for (let i = 0; i < 50 && JSON.stringify(got) !== JSON.stringify(expected); i++) {
      await new Promise((r) => setTimeout(r, 50))
      got = await health()
    }
    return got
  }
  // An age beyond PostgreSQL's interval range: the sweep's UPDATE fails in the background.
  t.equal((await lead.post('/tickets/close-stale', { olderThanSeconds: Number.MAX_SAFE_INTEGER })).statusCode, 202)
  t.same(await waitFor([503, { ok: false }]), [503, { ok: false }])
  await lead.post('/tickets/close-stale', { olderThanSeconds: 60 })
  t.same(await waitFor([200, { ok: true }]), [200, { ok: true }], 'healthy again after a good sweep')
})

t.test('a reminder on tickets left open, by a job: queued with the request, run by h.runJobs(), once', async (t) => {
  const opened = await agent.post('/tickets', { title: 'Waiting on the vendor' })
  t.equal(opened.statusCode, 201)
  const id = opened.json().id
  t.equal((await agent.post('/tickets/remind-stale', { olderThanSeconds: 0 })).statusCode, 403, 'agents may not')
  t.same(await h.runJobs(), { completed: 0, failed: 0 }, 'a refused request queued nothing')
  t.equal((await lead.post('/tickets/remind-stale', { olderThanSeconds: 0 })).statusCode, 202)
  t.same(await h.runJobs(), { completed: 1, failed: 0 })
  const reminders = async () =>
    (await h.host.pool.query(`SELECT body FROM t_acme.ticket_comments WHERE ticket_id = $1 AND author = 'tickets:reminder'`, [id])).rows
  t.same(await reminders(), [{ body: 'Reminder: this ticket is still open.' }])
  t.equal((await lead.post('/tickets/remind-stale', { olderThanSeconds: 0 })).statusCode, 202)
  t.same(await h.runJobs(), { completed: 1, failed: 0 })
  t.equal((await reminders()).length, 1, 'reminded once')
  const { rows } = await h.host.pool.query(`SELECT count(*)::int AS n FROM t_beta.ticket_comments`)
  t.equal(rows[0].n, 0, "and nothing in beta's tickets")
})
