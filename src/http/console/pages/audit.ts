// The audit trail: newest first, filtered by actor, action, tenant and time, paged by cursor; and
// whether its chain verifies.
import type { FastifyInstance } from 'fastify'
import type { Host } from '../../../app/host.ts'
import { listAudit, type AuditFilter } from '../../../platform/audit/trail.ts'
import { verifyAudit } from '../../../platform/audit/verify.ts'
import { HttpProblem } from '../../../problems.ts'
import { html } from '../html.ts'
import { page, statusText } from '../layout.ts'
import { csrfToken, sendPage } from '../respond.ts'

type Query = { actor?: string; action?: string; tenant?: string; since?: string; until?: string; cursor?: string; verify?: string }

function time(value: string | undefined, field: string): Date | undefined {
  if (!value) return undefined
  const parsed = new Date(value)
  if (Number.isNaN(parsed.getTime())) throw new HttpProblem(400, 'VALIDATION_FAILED', 'The filter is invalid.', { errors: [{ path: `/${field}`, message: 'must be a time such as 2026-12-01 or 2026-12-01T10:00' }] })
  return parsed
}

export async function auditPage(app: FastifyInstance, { host }: { host: Host }) {
  app.get<{ Querystring: Query }>('/audit', async (request, reply) => {
    const q = request.query
    const text = (value: string | undefined) => value?.trim().slice(0, 200) || undefined
    const filter: AuditFilter = { actor: text(q.actor), action: text(q.action), tenant: text(q.tenant), since: time(q.since, 'since'), until: time(q.until, 'until') }
    const [pageOfEvents, check] = await Promise.all([listAudit(host.pool, filter, { limit: 50, cursor: q.cursor || null }), q.verify ? verifyAudit(host.pool) : undefined])
    const csrf = csrfToken(request, reply)
    const kept = new URLSearchParams(Object.entries({ actor: q.actor, action: q.action, tenant: q.tenant, since: q.since, until: q.until }).filter(([, v]) => v) as [string, string][])
    const field = (name: keyof Query, label: string, hint: string) =>
      html`<label for="f-${name}">${label} <input id="f-${name}" name="${name}" value="${q[name] ?? ''}" placeholder="${hint}" maxlength="200"></label>`
    const body = html`
      <section aria-labelledby="filters"><h2 id="filters">Filters</h2>
        <form method="get" action="/admin/audit" class="row">
          ${field('actor', 'Actor', 'console, cli:ann, admin-token')}${field('action', 'Action', 'tenant or key.revoked')}${field('tenant', 'Tenant', 'acme')}
          ${field('since', 'Since', '2026-12-01')}${field('until', 'Until', '2026-12-31T18:00')}
          <button type="submit" class="quiet">Filter</button>
        </form>
        <p><a href="/admin/audit?${kept}${kept.size ? '&' : ''}verify=1">Verify the chain</a></p>
        ${check ? check.ok ? html`<p class="notice" role="status">The chain verifies: ${check.checked} events checked, head ${check.head.seq}.</p>` : html`<p class="error" role="alert">The chain is broken at event ${check.broken!.seq}: ${check.broken!.problem}</p>` : ''}
      </section>
      <section aria-labelledby="events"><h2 id="events">Events</h2>
        ${pageOfEvents.events.length === 0 ? html`<p>No events match.</p>` : html`<table>
        <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Tenant</th><th scope="col">Outcome</th><th scope="col">What changed</th><th scope="col">From</th></tr></thead>
        <tbody>${pageOfEvents.events.map(
          (e) => html`<tr><td>${e.seq}</td><td>${e.at}</td><td>${e.actorKind}${e.actorId ? html`: ${e.actorId}` : ''}</td><td>${e.action}</td><td>${e.target ?? '-'}</td><td>${e.tenant ?? '-'}</td><td>${statusText(e.outcome)}</td><td class="mono">${Object.keys(e.changes).length ? JSON.stringify(e.changes) : ''}</td><td class="mono">${e.clientAddress ?? ''}${e.requestId ? html`<br>${e.requestId}` : ''}</td></tr>`,
        )}</tbody></table>`}
        <p class="pager">${q.cursor ? html`<a href="/admin/audit?${kept}">Newest</a>` : ''}${pageOfEvents.next ? html`<a href="/admin/audit?${kept}${kept.size ? '&' : ''}cursor=${pageOfEvents.next}" rel="next">Older</a>` : ''}</p>
      </section>`
    return sendPage(reply, page('Audit trail', { csrf, operator: request.consoleSession?.operator, section: 'audit' }, body))
  })
}
