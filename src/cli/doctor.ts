// plinth doctor: the seed's sanity checklist and plinth's own, run against a database and, given
// --url, a running host. One line per check, what to do about a failure, exit 1 when any fails.
import { randomBytes } from 'node:crypto'
import type { Host } from '../app/host.ts'
import { registerModules } from '../http/mount-modules.ts'
import { JwtVerifier } from '../access/jwt.ts'
import { requiredPermission } from '../access/require.ts'
import { findPendingTenantMigrations } from '../tenancy/migrations.ts'
import { orphanedTenantRoles } from '../tenancy/orphan-roles.ts'

export interface Check {
  check: string
  result: 'ok' | 'warn' | 'fail'
  detail?: string
  fix?: string
}

const PLATFORM_TABLES = ['sys_tenant', 'sys_api_key', 'sys_change', 'sys_migration', 'sys_tenant_migration', 'sys_tenant_module', 'sys_setting']
const RBAC_TABLES = ['plinth_role', 'plinth_role_grant', 'plinth_principal_role']

export async function runDoctor(host: Host, options: { url?: string }): Promise<Check[]> {
  // As a starting host does: each module's register(ctx) runs, so its failures and its routes are known.
  await registerModules(host)
  const checks: Check[] = []
  const add = (check: Check) => checks.push(check)
  const pool = host.pool

  // Bootstrap: the platform tables.
  const { rows: present } = await pool.query<{ name: string }>(`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = ANY($1)`, [PLATFORM_TABLES])
  const missing = PLATFORM_TABLES.filter((t) => !present.some((p) => p.name === t))
  add(missing.length ? { check: 'platform tables in public', result: 'fail', detail: `missing: ${missing.join(', ')}`, fix: 'run `plinth migrate`' } : { check: 'platform tables in public (sys_tenant and the rest)', result: 'ok' })

  // Every tenant: its schema, its RBAC tables, its role, and no tenant_id columns.
  const tenants = host.registry.list()
  const broken: string[] = []
  const withTenantId: string[] = []
  for (const tenant of tenants) {
    const { rows } = await pool.query<{ tables: string[]; role: boolean }>(
      `SELECT coalesce((SELECT array_agg(c.relname::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1), '{}') AS tables,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
      [tenant.schema, tenant.role],
    )
    const lacking = RBAC_TABLES.filter((t) => !rows[0].tables.includes(t))
    if (lacking.length || !rows[0].role) broken.push(`${tenant.code} (${[...lacking, ...(rows[0].role ? [] : ['its role'])].join(', ')} missing)`)
    const { rows: columns } = await pool.query(`SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'tenant_id'`, [tenant.schema])
    if (columns.length) withTenantId.push(`${tenant.code}: ${columns.map((c) => c.table_name).join(', ')}`)
  }
  add(broken.length ? { check: 'tenant schemas, RBAC tables and roles', result: 'fail', detail: broken.join('; '), fix: 'run `plinth migrate`; a schema dropped by hand needs the tenant dropped' } : { check: `${tenants.length} tenant schema(s) with their RBAC tables and role`, result: 'ok' })
  add(withTenantId.length ? { check: 'no tenant_id columns in tenant schemas', result: 'fail', detail: withTenantId.join('; '), fix: 'isolation is the schema: drop the column in a new module migration' } : { check: 'no tenant_id columns in tenant schemas', result: 'ok' })

  // Modules: every one found loads, its api accepts this host.
  const unavailable = host.modules.filter((m) => m.status !== 'loaded')
  add(unavailable.length ? { check: 'modules load', result: 'fail', detail: unavailable.map((m) => `${m.id} ${m.status}: ${m.reason}`).join('; '), fix: 'fix the module (docs/modules.md lists the rules), or leave it out of PLINTH_MODULES' } : { check: `${host.modules.length} module(s) load, api 1.x accepted`, result: 'ok' })

  // Migrations applied everywhere; no module failed for a tenant.
  // The doctor migrates nothing (only `plinth migrate` and the host's start do): it reports what is pending.
  const pending = await findPendingTenantMigrations(pool, host.migrationSources())
  const failedModules = tenants.flatMap((t) => host.modules.filter((m) => host.tenantModules.state(t.id, m.id)?.status === 'failed').map((m) => `${m.id} for ${t.code}`))
  add(pending.length || failedModules.length ? { check: 'tenant migrations applied', result: 'fail', detail: [...pending.map((r) => `${r.source} ${r.name} pending for ${r.code}`), ...failedModules].join('; '), fix: 'fix the cause, then `plinth migrate` (docs/modules.md: recovering from an edited migration)' } : { check: 'every tenant migration applied, no module failed for a tenant', result: 'ok' })

  // Grants that give nothing.
  const unknown: string[] = []
  for (const tenant of tenants) for (const role of await host.roles.list(tenant)) if (role.unknownGrants.length) unknown.push(`${tenant.code}/${role.name}: ${role.unknownGrants.join(', ')}`)
  add(unknown.length ? { check: 'grants name declared permissions', result: 'warn', detail: unknown.join('; '), fix: 'they give nothing (unknown permissions deny); revoke them or enable the module that declares them' } : { check: 'every grant names a declared permission', result: 'ok' })

  // The tenant boundary: tenant work logs in as each tenant; roles of gone databases removed.
  add(
    host.tenantConnections
      ? { check: "tenant work runs on connections logged in as each tenant's role", result: 'ok' }
      : host.db.kind === 'embedded'
        ? { check: 'tenant work runs under SET ROLE on the one login of the embedded database', result: 'warn', detail: 'the embedded database is for development: an injected query could cross tenants here', fix: 'docs/security.md: run on PostgreSQL (DATABASE_URL) for many tenants' }
        : { check: 'tenant connections log in as each tenant', result: 'warn', detail: 'PLINTH_TENANT_CONNECTIONS=shared: an injected query could cross tenants', fix: 'docs/security.md: give the login role CREATEROLE and unset PLINTH_TENANT_CONNECTIONS' },
  )
  const { rows: temp } = await pool.query<{ public_temp: boolean }>(
    `SELECT has_database_privilege('public', current_database(), 'TEMPORARY') AS public_temp`,
  ).catch(() => ({ rows: [{ public_temp: false }] }))
  if (temp[0]?.public_temp) add({ check: 'tenant roles cannot create temporary tables', result: 'fail', detail: 'PUBLIC has TEMPORARY on this database', fix: 'as its owner: REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC; GRANT TEMPORARY ON DATABASE <db> TO <login role>' })
  const orphans = await orphanedTenantRoles(pool)
  add(orphans.length ? { check: 'no tenant role outlives its database', result: 'warn', detail: orphans.map((o) => `${o.role} (${o.database})`).join(', '), fix: '`plinth orphan-roles --drop`' } : { check: 'no tenant role on this server outlives its database', result: 'ok' })

  // The login role and the admin token.
  const { rows: login } = await pool.query<{ superuser: boolean }>('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user')
  add(
    login[0]?.superuser
      ? { check: 'the database login role is a superuser', result: 'warn', detail: 'plinth needs no more than CREATEROLE', fix: 'docs/security.md: a login role with CREATEROLE is enough' }
      : { check: 'the database login role is not a superuser', result: 'ok' },
  )
  // The CLI opens without the identities that read these (compose.ts): the doctor reads them as a starting host would.
  const { jwt } = host.config
  if (jwt.secret || jwt.publicKeyFile || jwt.jwksFile) {
    try {
      await JwtVerifier.create(jwt)
      add({ check: 'the JWT verification key is readable', result: 'ok' })
    } catch (err) {
      add({ check: 'the JWT verification key is readable', result: 'fail', detail: (err as Error).message, fix: 'PLINTH_JWT_PUBLIC_KEY_FILE or PLINTH_JWT_JWKS_FILE must name a readable key: the host does not start without it' })
    }
  }
  add(host.config.adminToken ? { check: 'PLINTH_ADMIN_TOKEN is set (24+ characters)', result: 'ok' } : { check: 'PLINTH_ADMIN_TOKEN is set', result: 'fail', detail: 'unset: the admin API refuses every call', fix: 'set it to a random string of 24 characters or more' })

  if (!options.url) {
    add({ check: 'a running host (health, permissions, change feed)', result: 'warn', detail: 'not checked', fix: 'run `plinth doctor --url http://<host>:<port>` against a running host' })
    return checks
  }
  await checkRunningHost(host, options.url, add)
  return checks
}

async function checkRunningHost(host: Host, url: string, add: (check: Check) => void) {
  const base = url.replace(/\/$/, '')
  const operator = host.config.adminToken ? { authorization: `Bearer ${host.config.adminToken}` } : undefined
  const ready = await fetch(`${base}/health/ready`, { headers: operator }).then(async (r) => ({ status: r.status, body: await r.json().catch(() => ({})) }), (err) => ({ status: 0, body: { detail: err.message } }))
  add(ready.status === 200 ? { check: `the host is ready; its change feed is live (${ready.body.changeFeed?.mode}, ${ready.body.changeFeed?.lagMs} ms behind)`, result: 'ok' } : { check: 'the host is ready and its change feed live', result: 'fail', detail: `GET /health/ready: ${ready.status} ${ready.body.detail ?? ''}`, fix: 'docs/operations.md: the change feed lines' })
  if (ready.status === 0) return

  const loaded = host.modules.filter((m) => m.status === 'loaded')
  const unhealthy: string[] = []
  for (const module of loaded) {
    const res = await fetch(`${base}/api/plugins/${module.id}/health`)
    const body = await res.json().catch(() => null)
    if (res.status !== 200 || body?.ok !== true) unhealthy.push(`${module.id}: ${res.status} ${JSON.stringify(body)}`)
  }
  add(unhealthy.length ? { check: "every module's /health is open and answers { ok: true }", result: 'fail', detail: unhealthy.join('; '), fix: "the module's health(ctx) or GET /health says why" } : { check: `${loaded.length} module /health route(s) open, answering { ok: true }`, result: 'ok' })

  // Deny by default, then allow once granted: on a GET route behind rbac.require, in a tenant made for the check.
  const target = loaded
    .flatMap((m) => m.routes.map((route) => ({ module: m.id, route, permission: route.steps.map((s) => requiredPermission(s.fn)).find(Boolean) })))
    .find((r) => r.route.method === 'GET' && !r.route.url.includes(':') && !r.route.url.includes('*') && r.permission)
  if (!target) {
    add({ check: 'a guarded route answers 403, then 2xx once granted', result: 'warn', detail: 'no loaded module has a GET route without parameters behind rbac.require' })
    return
  }
  const code = `doctor-${randomBytes(3).toString('hex')}`
  try {
    await host.tenants.create({ code, name: 'plinth doctor (temporary)' })
    const tenant = await host.tenants.get(code)
    await host.enableModule(code, target.module)
    await host.roles.create(tenant, 'doctor')
    const { key } = await host.createKey(code, 'doctor', ['doctor'])
    const call = () => fetch(`${base}/api/plugins/${target.module}${target.route.url}`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status)
    const before = await call()
    await host.roles.grant(tenant, 'doctor', target.permission!)
    const after = await call()
    const where = `GET /api/plugins/${target.module}${target.route.url} (${target.permission})`
    add(before === 403 && after >= 200 && after < 300 ? { check: `${where}: 403 without the permission, ${after} once granted`, result: 'ok' } : { check: `${where}: 403, then 2xx once granted`, result: 'fail', detail: `answered ${before}, then ${after}`, fix: 'the host does not see this database, or its permissions are stale: check DATABASE_URL and its change feed' })
  } finally {
    // Its schema, role, key and grants go with it; a create that failed left nothing.
    await host.tenants.drop(code, code).catch(() => {})
  }
}

const MARK = { ok: '✓', warn: '!', fail: '✗' }

export function doctorText(checks: Check[]): string {
  return (
    checks.map((c) => `${MARK[c.result]} ${c.check}${c.detail ? `: ${c.detail}` : ''}${c.result !== 'ok' && c.fix ? `\n    → ${c.fix}` : ''}`).join('\n') +
    `\n${checks.filter((c) => c.result === 'fail').length} failed, ${checks.filter((c) => c.result === 'warn').length} warning(s), ${checks.filter((c) => c.result === 'ok').length} ok\n`
  )
}
