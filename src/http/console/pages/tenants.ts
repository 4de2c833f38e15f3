// Tenants: the list (search, keyset paging by code), and the form that creates one.
import type { FastifyInstance } from 'fastify'
import type { Host } from '../../../app/host.ts'
import { pageTenants } from '../../../tenancy/registry.ts'
import { html } from '../html.ts'
import { csrfField, page, statusText } from '../layout.ts'
import { csrfToken, sendPage } from '../respond.ts'

interface ListQuery {
  q?: string
  after?: string
  notice?: string
}

export async function tenantPages(app: FastifyInstance, { host }: { host: Host }) {
  app.get<{ Querystring: ListQuery }>('/tenants', async (request, reply) => {
    const search = request.query.q?.trim().slice(0, 200) || undefined
    const after = request.query.after?.slice(0, 40) || undefined
    const { tenants, next } = await pageTenants(host.pool, { search, after })
    const csrf = csrfToken(request, reply)
    const query = (more: Record<string, string>) => new URLSearchParams({ ...(search ? { q: search } : {}), ...more }).toString()
    const notice = request.query.notice === 'dropped' ? 'The tenant was dropped, with all its data.' : undefined
    const rows = tenants.map(
      (t) => html`<tr><td><a href="/admin/tenants/${t.code}">${t.code}</a></td><td>${t.name}</td><td>${statusText(t.status)}</td><td>${t.domain ?? '-'}</td><td class="mono">${t.schema}</td><td>${t.createdAt}</td></tr>`,
    )
    const body = html`
      <section aria-labelledby="find">
        <h2 id="find">Find</h2>
        <form method="get" action="/admin/tenants" class="row" role="search">
          <label for="q">Code, name or domain contains <input id="q" name="q" value="${search ?? ''}" maxlength="200"></label>
          <button type="submit" class="quiet">Search</button>
        </form>
      </section>
      <section aria-labelledby="list">
        <h2 id="list">${search ? html`Tenants matching “${search}”` : 'All tenants'}${after ? html`, after ${after}` : ''}</h2>
        ${tenants.length === 0 ? html`<p>No tenants${search ? ' match' : ' yet'}.</p>` : html`<table>
          <thead><tr><th scope="col">Code</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Domain</th><th scope="col">Schema</th><th scope="col">Created</th></tr></thead>
          <tbody>${rows}</tbody></table>`}
        <p class="pager">${after ? html`<a href="/admin/tenants?${query({})}">First page</a>` : ''}${next ? html`<a href="/admin/tenants?${query({ after: next })}" rel="next">Next page</a>` : ''}</p>
      </section>
      <section aria-labelledby="create">
        <h2 id="create">Create a tenant</h2>
        <form method="post" action="/admin/tenants" class="row">
          ${csrfField(csrf)}
          <label for="code">Code <input id="code" name="code" required pattern="[a-z][a-z0-9-]{1,39}" maxlength="40"></label>
          <label for="name">Name <input id="name" name="name" required maxlength="200"></label>
          <label for="domain">Domain (optional) <input id="domain" name="domain" maxlength="253"></label>
          <button type="submit">Create</button>
        </form>
      </section>`
    return sendPage(reply, page('Tenants', { csrf, operator: request.consoleSession?.operator, section: 'tenants', notice }, body))
  })

  app.post<{ Body: { code?: string; name?: string; domain?: string } }>('/tenants', async (request, reply) => {
    const { code = '', name = '', domain } = request.body ?? {}
    const tenant = await host.tenants.create({ code, name, domain: domain?.trim() ? domain.trim() : null })
    return reply.redirect(`/admin/tenants/${tenant.code}?notice=created`, 303)
  })
}
