// One tenant: its status, modules (with their migration state and last error), roles and grants,
// and keys (never a secret, but once, right after it is made); and what an operator does to it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Host } from '../../../app/host.ts'
import type { Tenant } from '../../../tenancy/registry.ts'
import { html, type Html } from '../html.ts'
import { csrfField, page, postButton, statusText } from '../layout.ts'
import { csrfToken, sendPage } from '../respond.ts'

type Params = { code: string }

const NOTICES: Record<string, string> = {
  created: 'The tenant was created.',
  suspended: 'The tenant is suspended: its API answers 403 until it is resumed.',
  resumed: 'The tenant is active again.',
  revoked: 'The key was revoked: it stops working on every instance.',
  enabled: 'The module was enabled and its migrations applied.',
  disabled: 'The module was disabled: its routes answer 404 for this tenant; its data stays.',
  migrated: 'Pending migrations were applied to this tenant.',
}

const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value])

async function render(host: Host, request: FastifyRequest, reply: FastifyReply, code: string, extra: { notice?: string | Html; status?: number } = {}) {
  const tenant = await host.tenants.get(code)
  await host.tenantModules.refresh(tenant.id)
  const [roles, keys] = await Promise.all([host.roles.list(tenant), host.keys.list(tenant.id)])
  const csrf = csrfToken(request, reply)
  const base = `/admin/tenants/${tenant.code}`
  const modules = host.modules.map((m) => ({ record: m, state: host.tenantModules.state(tenant.id, m.id) }))
  const body = html`
    <section aria-labelledby="about">
      <h2 id="about">About</h2>
      <table><tbody>
        <tr><th scope="row">Name</th><td>${tenant.name}</td></tr>
        <tr><th scope="row">Status</th><td>${statusText(tenant.status)}</td></tr>
        <tr><th scope="row">Domain</th><td>${tenant.domain ?? '-'}</td></tr>
        <tr><th scope="row">Schema</th><td class="mono">${tenant.schema}</td></tr>
        <tr><th scope="row">Created</th><td>${tenant.createdAt}</td></tr>
      </tbody></table>
      <p class="row">${tenant.status === 'active' ? postButton(csrf, `${base}/suspend`, 'Suspend') : postButton(csrf, `${base}/resume`, 'Resume')}
        ${postButton(csrf, `/admin/migrations/${tenant.code}/retry`, 'Apply pending migrations', { quiet: true })}</p>
    </section>
    <section aria-labelledby="modules">
      <h2 id="modules">Modules</h2>
      <table><thead><tr><th scope="col">Module</th><th scope="col">Enabled</th><th scope="col">Migrations</th><th scope="col">Last error</th><th scope="col"><span class="muted">Action</span></th></tr></thead><tbody>
      ${modules.map(
        ({ record, state }) => html`<tr><td>${record.id}</td><td>${state?.enabled ? 'yes' : 'no'}</td><td>${statusText(state?.status)}</td><td>${state?.error ?? ''}</td>
          <td>${state?.enabled ? postButton(csrf, `${base}/modules/${record.id}/disable`, `Disable ${record.id}`, { quiet: true }) : record.status === 'loaded' ? postButton(csrf, `${base}/modules/${record.id}/enable`, `Enable ${record.id}`, { quiet: true }) : html`<span class="muted">${record.status}</span>`}</td></tr>`,
      )}
      </tbody></table>
    </section>
    <section aria-labelledby="roles">
      <h2 id="roles">Roles and grants</h2>
      ${roles.length === 0 ? html`<p>No roles.</p>` : html`<table><thead><tr><th scope="col">Role</th><th scope="col">Grants</th><th scope="col">Held by</th><th scope="col">Grants that give nothing</th></tr></thead><tbody>
        ${roles.map((r) => html`<tr><td>${r.name}</td><td class="mono">${r.grants.join(' ') || '-'}</td><td class="mono">${r.principals.join(' ') || '-'}</td><td class="mono">${r.unknownGrants.join(' ')}</td></tr>`)}
      </tbody></table>`}
    </section>
    <section aria-labelledby="keys">
      <h2 id="keys">API keys</h2>
      ${keys.length === 0 ? html`<p>No keys.</p>` : html`<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Revoked</th><th scope="col"><span class="muted">Action</span></th></tr></thead><tbody>
        ${keys.map((k) => html`<tr><td class="mono">${k.id}</td><td>${k.name}</td><td>${k.createdAt}</td><td>${k.revokedAt ?? '-'}</td><td>${k.revokedAt ? '' : postButton(csrf, `${base}/keys/${k.id}/revoke`, `Revoke ${k.name}`, { danger: true })}</td></tr>`)}
      </tbody></table>`}
      <h3>New key</h3>
      <form method="post" action="${base}/keys" class="row">
        ${csrfField(csrf)}
        <label for="key-name">Name <input id="key-name" name="name" required maxlength="100"></label>
        ${roles.length > 0 ? html`<fieldset><legend>Roles</legend>${roles.map((r, i) => html`<label for="role-${i}"><span><input type="checkbox" id="role-${i}" name="roles" value="${r.name}"> ${r.name}</span></label>`)}</fieldset>` : ''}
        <button type="submit">Create key</button>
      </form>
    </section>
    <section aria-labelledby="danger">
      <h2 id="danger">Drop</h2>
      <p>Dropping deletes the tenant's schema, role, keys and every row of its data. Type the tenant's code to confirm.</p>
      <form method="post" action="${base}/drop" class="row">
        ${csrfField(csrf)}
        <label for="confirm">Tenant code <input id="confirm" name="confirm" required autocomplete="off"></label>
        <button type="submit" class="danger">Drop ${tenant.code}</button>
      </form>
    </section>`
  const notice = extra.notice ?? NOTICES[(request.query as { notice?: string }).notice ?? '']
  return sendPage(reply, page(`Tenant ${tenant.code}`, { csrf, operator: request.consoleSession?.operator, section: 'tenants', notice }, body), extra.status)
}

export async function tenantPage(app: FastifyInstance, { host }: { host: Host }) {
  const done = (reply: FastifyReply, tenant: Pick<Tenant, 'code'>, notice: keyof typeof NOTICES) => reply.redirect(`/admin/tenants/${tenant.code}?notice=${notice}`, 303)

  app.get<{ Params: Params }>('/tenants/:code', async (request, reply) => render(host, request, reply, request.params.code))

  app.post<{ Params: Params }>('/tenants/:code/suspend', async (request, reply) => done(reply, await host.tenants.suspend(request.params.code), 'suspended'))
  app.post<{ Params: Params }>('/tenants/:code/resume', async (request, reply) => done(reply, await host.tenants.resume(request.params.code), 'resumed'))

  app.post<{ Params: Params; Body: { confirm?: string } }>('/tenants/:code/drop', async (request, reply) => {
    await host.tenants.drop(request.params.code, request.body?.confirm ?? '')
    return reply.redirect('/admin/tenants?notice=dropped', 303)
  })

  // The secret is in this response alone: rendered, never redirected to, never stored (no-store).
  app.post<{ Params: Params; Body: { name?: string; roles?: string | string[] } }>('/tenants/:code/keys', async (request, reply) => {
    const created = await host.createKey(request.params.code, request.body?.name ?? '', list(request.body?.roles))
    const notice = html`Key <strong>${created.name}</strong> (${created.id}) was created. Its secret is shown this once; store it now:
      <div class="secret"><code id="new-key-secret">${created.key}</code></div>`
    return render(host, request, reply, request.params.code, { notice, status: 201 })
  })

  app.post<{ Params: Params & { id: string } }>('/tenants/:code/keys/:id/revoke', async (request, reply) => {
    const tenant = await host.tenants.get(request.params.code)
    await host.keys.revoke(tenant, request.params.id)
    return done(reply, tenant, 'revoked')
  })

  app.post<{ Params: Params & { id: string; verb: string } }>('/tenants/:code/modules/:id/:verb', async (request, reply) => {
    const { code, id, verb } = request.params
    if (verb === 'enable') {
      const result = await host.enableModule(code, id)
      if (result.status !== 'ok') return render(host, request, reply, code, { notice: html`Module ${id} is enabled, but its migrations ${result.status}: ${result.error ?? ''}`, status: 200 })
      return done(reply, { code }, 'enabled')
    }
    if (verb === 'disable') {
      await host.disableModule(code, id)
      return done(reply, { code }, 'disabled')
    }
    return reply.callNotFound()
  })
}
