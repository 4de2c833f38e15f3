// Modules: each one found, with its version, the host API it targets, whether it loaded, and why
// not where it did not (the same facts as `plinth module list` and GET /api/plugins).
import type { FastifyInstance } from 'fastify'
import type { Host } from '../../../app/host.ts'
import { describeModule } from '../../../modules/discovery.ts'
import { html } from '../html.ts'
import { page, statusText } from '../layout.ts'
import { csrfToken, sendPage } from '../respond.ts'

export async function modulesPage(app: FastifyInstance, { host }: { host: Host }) {
  app.get('/modules', async (request, reply) => {
    const modules = host.modules.map((m) => ({ ...describeModule(m, true), permissions: m.manifest?.permissions ?? [] }))
    const body = html`<section aria-labelledby="found"><h2 id="found">Found in this host's module folders</h2>
      ${modules.length === 0 ? html`<p>No modules.</p>` : html`<table>
      <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Version</th><th scope="col">API</th><th scope="col">Status</th><th scope="col">Permissions</th><th scope="col">Why not loaded</th></tr></thead>
      <tbody>${modules.map(
        (m) => html`<tr><td>${m.id}</td><td>${m.name ?? '-'}</td><td>${m.version ?? '-'}</td><td>${m.api ?? '-'}</td><td>${statusText(m.status)}</td><td class="mono">${m.permissions.join(' ')}</td><td>${m.reason ?? ''}</td></tr>`,
      )}</tbody></table>`}</section>`
    const csrf = csrfToken(request, reply)
    return sendPage(reply, page('Modules', { csrf, operator: request.consoleSession?.operator, section: 'modules' }, body))
  })
}
