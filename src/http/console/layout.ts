// Every console page's frame: the navigation, who is signed in, the sign-out form, one notice or
// error, and the page's own body. Forms carry the request's CSRF token (csrfField).
import { html, type Html } from './html.ts'

export interface PageContext {
  /** The signed-in operator; none on the sign-in page. */
  operator?: string
  /** This request's CSRF token, for every form on the page. */
  csrf: string
  /** Which navigation entry is current. */
  section?: 'tenants' | 'modules' | 'migrations' | 'audit'
  notice?: string | Html
  error?: string
}

const SECTIONS = [
  ['tenants', '/admin/tenants', 'Tenants'],
  ['modules', '/admin/modules', 'Modules'],
  ['migrations', '/admin/migrations', 'Migrations'],
  ['audit', '/admin/audit', 'Audit trail'],
] as const

export const csrfField = (csrf: string) => html`<input type="hidden" name="_csrf" value="${csrf}">`

/** A button that posts to `action`: every change in the console is a POST with its CSRF token. */
export function postButton(csrf: string, action: string, label: string, { danger = false, quiet = false, fields = html`` } = {}) {
  return html`<form class="inline" method="post" action="${action}">${csrfField(csrf)}${fields}<button type="submit" class="${danger ? 'danger' : quiet ? 'quiet' : ''}">${label}</button></form>`
}

export function page(title: string, context: PageContext, body: Html): Html {
  const nav = context.operator
    ? html`<nav aria-label="Console"><ul>${SECTIONS.map(
        ([id, href, label]) => html`<li><a href="${href}"${context.section === id ? html` aria-current="page"` : ''}>${label}</a></li>`,
      )}</ul></nav>
      <form method="post" action="/admin/sign-out">${csrfField(context.csrf)}<span class="who">${context.operator}</span> <button type="submit">Sign out</button></form>`
    : ''
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · plinth console</title>
<link rel="stylesheet" href="/admin/assets/console.css">
</head>
<body>
<header><span class="brand">plinth</span>${nav}</header>
<main>
<h1>${title}</h1>
${context.notice ? html`<div class="notice" role="status">${context.notice}</div>` : ''}
${context.error ? html`<div class="error" role="alert">${context.error}</div>` : ''}
${body}
</main>
</body>
</html>`
}

export const statusText = (status: string | null | undefined) => (status ? html`<span class="status-${status}">${status}</span>` : html`<span class="muted">-</span>`)
