// npm run bench:audit: what the audit trail adds to an admin write, as A/B pairs run side by side
// on one host. A is the write as it was before the trail (its transaction, its change record and
// announcement, no row); B is the service as it is, which appends the row in the same
// transaction. Each pair alternates A and B, one write at a time and then from 4 writers at once
// (appends queue on the chain's head, so concurrency is where a lock would show).
import fs from 'node:fs/promises'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { recordChange } from '../src/platform/db/changes.ts'
import { inSchemaTransaction, inTransaction } from '../src/platform/db/platform-transaction.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import type { Tenant } from '../src/tenancy/registry.ts'
import { codeVersion, machine, openBenchHost, requireDatabaseUrl } from './support.ts'

requireDatabaseUrl()
const ROUNDS = Number(process.env.BENCH_AUDIT_ROUNDS ?? 2000)
const WARMUP = 300
const WRITERS = 4

const database = await createTestDatabase()
const host = await openBenchHost(database.env)
const tenants: Tenant[] = []
for (let i = 0; i < WRITERS; i++) tenants.push(await host.tenants.create({ code: `audit${i}`, name: `Audit ${i}` }))
for (const tenant of tenants) await host.roles.create(tenant, 'bench')

type Write = (tenant: Tenant, i: number) => Promise<unknown>

const status = (i: number) => (i % 2 === 0 ? 'suspended' : 'active')
const writes: Record<string, { before: Write; audited: Write }> = {
  'tenant suspend/resume': {
    before: async (tenant, i) => {
      await inTransaction(host.pool, async (client) => {
        await client.query('UPDATE public.sys_tenant SET status = $2 WHERE code = $1 RETURNING id', [tenant.code, status(i)])
        await recordChange(client, 'tenant', tenant.id)
      })
      await host.changes.announce('tenant', tenant.id)
    },
    audited: (tenant, i) => (i % 2 === 0 ? host.tenants.suspend(tenant.code) : host.tenants.resume(tenant.code)),
  },
  'role grant/revoke': {
    before: async (tenant, i) => {
      await inSchemaTransaction(host.pool, tenant.schema, async (client, s) => {
        if (i % 2 === 0) await client.query(`INSERT INTO ${s}.plinth_role_grant (role_id, permission) SELECT id, $2 FROM ${s}.plinth_role WHERE name = $1 ON CONFLICT DO NOTHING`, ['bench', 'inventory.items.read'])
        else await client.query(`DELETE FROM ${s}.plinth_role_grant g USING ${s}.plinth_role r WHERE g.role_id = r.id AND r.name = $1 AND g.permission = $2`, ['bench', 'inventory.items.read'])
        await recordChange(client, 'rbac', tenant.id)
      })
      await host.changes.announce('rbac', tenant.id)
    },
    audited: (tenant, i) => (i % 2 === 0 ? host.roles.grant(tenant, 'bench', 'inventory.items.read') : host.roles.revoke(tenant, 'bench', 'inventory.items.read')),
  },
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}
const round = (n: number) => Math.round(n * 1000) / 1000

/** Latencies (ms) of `rounds` writes by each of `writers` writers at once, A and B alternating round by round. */
async function pair(write: { before: Write; audited: Write }, writers: number, rounds: number) {
  const samples = { before: [] as number[], audited: [] as number[] }
  for (let i = 0; i < rounds + WARMUP; i++) {
    for (const variant of i % 4 < 2 ? (['before', 'audited'] as const) : (['audited', 'before'] as const)) {
      await Promise.all(
        tenants.slice(0, writers).map(async (tenant) => {
          const started = performance.now()
          await write[variant](tenant, i)
          if (i >= WARMUP) samples[variant].push(performance.now() - started)
        }),
      )
    }
  }
  const stats = (v: number[]) => ({ p50: round(percentile(v, 50)), p95: round(percentile(v, 95)), p99: round(percentile(v, 99)) })
  const before = stats(samples.before)
  const audited = stats(samples.audited)
  return { before, audited, addedP50: round(audited.p50 - before.p50), addedP95: round(audited.p95 - before.p95) }
}

const results: Record<string, unknown> = {}
for (const [name, write] of Object.entries(writes)) {
  for (const writers of [1, WRITERS]) {
    const label = `${name}, ${writers} writer${writers > 1 ? 's' : ''}`
    const result = await pair(write, writers, writers === 1 ? ROUNDS : Math.round(ROUNDS / 2))
    results[label] = result
    process.stdout.write(`${label.padEnd(36)} p50 ${result.before.p50} → ${result.audited.p50} ms (+${result.addedP50})   p95 ${result.before.p95} → ${result.audited.p95} ms (+${result.addedP95})   target: under +2 ms at p95\n`)
  }
}
const { rows } = await host.pool.query('SELECT count(*)::int AS n FROM public.audit_event')
process.stdout.write(`${rows[0].n} audit rows written; the chain: ${JSON.stringify((await (await import('../src/platform/audit/verify.ts')).verifyAudit(host.pool)).ok ? 'verifies' : 'BROKEN')}\n`)
await host.close()
await database.drop()

const file = path.join(PROJECT_ROOT, 'bench/results', `audit-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await fs.writeFile(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, code: codeVersion(), machine: machine(), rounds: ROUNDS, results }, null, 2) + '\n')
process.stdout.write(`written to ${path.relative(PROJECT_ROOT, file)}\n`)
