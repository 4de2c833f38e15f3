// Migrations across tenants: what is pending (per tenant and source) and which modules' migrations
// failed for which tenant, with a retry that runs what `plinth migrate --tenant <code>` runs.
import type { FastifyInstance } from 'fastify'
import type { Host } from '../../../app/host.ts'
import { html } from '../html.ts'
import { page, postButton } from '../layout.ts'
import { csrfToken, sendPage } from '../respond.ts'

export async function migrationsPage(app: FastifyInstance, { host }: { host: Host }) {
  app.get<{ Querystring: { notice?: string; tenant?: string } }>('/migrations', async (request, reply) => {
    const status = await host.migrationStatus()
    const csrf = csrfToken(request, reply)
    const retry = (tenant: string) => postButton(csrf, `/admin/migrations/${tenant}/retry`, `Retry ${tenant}`, { quiet: true })
    const body = html`
      <section aria-labelledby="failed"><h2 id="failed">Failed</h2>
        ${status.failed.length === 0 ? html`<p>No module's migrations have failed for any tenant.</p>` : html`<table>
        <thead><tr><th scope="col">Tenant</th><th scope="col">Module</th><th scope="col">Error</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
        <tbody>${status.failed.map((f) => html`<tr><td><a href="/admin/tenants/${f.tenant}">${f.tenant}</a></td><td>${f.module}</td><td>${f.error ?? ''}</td><td>${retry(f.tenant)}</td></tr>`)}</tbody></table>`}
      </section>
      <section aria-labelledby="pending"><h2 id="pending">Pending</h2>
        ${status.pending.length === 0 ? html`<p>Nothing is pending: every tenant has every file of the host and of its modules.</p>` : html`<table>
        <thead><tr><th scope="col">Tenant</th><th scope="col">Source</th><th scope="col">Files</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
        <tbody>${status.pending.map((p) => html`<tr><td><a href="/admin/tenants/${p.tenant}">${p.tenant}</a></td><td>${p.source}</td><td class="mono">${p.files.join(' ')}</td><td>${retry(p.tenant)}</td></tr>`)}</tbody></table>`}
      </section>`
    const tenant = request.query.tenant?.slice(0, 40)
    const notice = request.query.notice === 'ok' ? `Tenant ${tenant}: everything pending was applied.` : request.query.notice === 'failed' ? `Tenant ${tenant}: a migration failed again; its error is below.` : undefined
    return sendPage(reply, page('Migrations', { csrf, operator: request.consoleSession?.operator, section: 'migrations', notice }, body))
  })

  app.post<{ Params: { code: string } }>('/migrations/:code/retry', async (request, reply) => {
    const results = await host.migrateTenant(request.params.code)
    const outcome = results.every((r) => r.status === 'ok') ? 'ok' : 'failed'
    return reply.redirect(`/admin/migrations?${new URLSearchParams({ notice: outcome, tenant: request.params.code })}`, 303)
  })
}
