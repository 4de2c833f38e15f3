// npm run bench:archive: one tenant's export, import and clone, as the built `plinth` command
// runs them, beside the floor: `pg_dump -n <schema> -Fc -Z0` and `pg_restore` of the same schema
// into an empty database on the same server. Two tenants: 100k rows across the built-in modules'
// tables, and one of about BENCH_ARCHIVE_GB (default 1; 0 leaves it out) GB. Each step's wall time and the peak RSS
// of its process (GNU time's %M); each pair is run BENCH_ARCHIVE_ROUNDS times (default 2) and the
// median kept.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase, withServer } from '../src/testing/database.ts'
import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { buildPlinth, codeVersion, machine, median, openBenchHost, requireDatabaseUrl, startServer } from './support.ts'

const serverUrl = requireDatabaseUrl()
const GB = Number(process.env.BENCH_ARCHIVE_GB ?? 1)
const ROUNDS = Number(process.env.BENCH_ARCHIVE_ROUNDS ?? 2)

buildPlinth()
const database = await createTestDatabase()
const env = { ...process.env, ...database.env, LOG_LEVEL: 'warn', PLINTH_ENV_FILE: 'none' }
const host = await openBenchHost(database.env)
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-bench-archive-'))

/** Runs a command; its wall seconds and peak RSS in MB, by GNU time. */
function timed(command: string, args: string[], extraEnv: Record<string, string> = {}): { seconds: number; rssMb: number } {
  const report = path.join(work, 'time')
  execFileSync('/usr/bin/time', ['-o', report, '-f', '%e %M', command, ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'inherit'] })
  const [seconds, kb] = execFileSync('cat', [report]).toString().trim().split(/\s+/).map(Number)
  return { seconds, rssMb: Math.round(kb / 1024) }
}

const plinth = (...args: string[]) => timed(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), ...args])

// The same three through the admin API of a running host (npm start): no process to start, no
// module code to load; what is left is the work on the database and the stream.
const ADMIN_TOKEN = 'bench-admin-token-of-some-length-0123456789'
const server = await startServer('plinth', 'dist/main.js', { ...env, PLINTH_ADMIN_TOKEN: ADMIN_TOKEN, PLINTH_JOBS: '0' })
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

async function api(step: () => Promise<void>): Promise<{ seconds: number; rssMb: number }> {
  const start = performance.now()
  await step()
  return { seconds: (performance.now() - start) / 1000, rssMb: 0 }
}

async function adminCall(route: string, init: RequestInit & { duplex?: 'half' }, out?: string) {
  const response = await fetch(`${server.url}/api/admin/tenants${route}`, { method: 'POST', ...init, headers: { ...admin, ...init.headers } })
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`)
  if (out) await pipeline(Readable.fromWeb(response.body as any), createWriteStream(out))
  else await response.arrayBuffer()
}

async function fill(code: string, rows: { items: number; tickets: number; payload: number }) {
  await host.tenants.create({ code, name: code })
  const tenant = await host.tenants.get(code)
  const s = `"${tenant.schema}"`
  // As the server's superuser: the bench's data, made fast.
  await host.pool.query(`INSERT INTO ${s}.items (name, sku, quantity) SELECT 'item ' || g, 'SKU-' || g || ' ' || repeat(md5(g::text), $2), g FROM generate_series(1, $1) g`, [rows.items, rows.payload])
  await host.pool.query(`INSERT INTO ${s}.tickets (title) SELECT 'ticket ' || g FROM generate_series(1, $1) g`, [rows.tickets])
  await host.pool.query(`INSERT INTO ${s}.ticket_comments (ticket_id, author, body) SELECT id, 'ann', 'comment on ' || id || ' ' || repeat(md5(id::text), $1) FROM ${s}.tickets`, [rows.payload])
  await host.pool.query(`VACUUM ANALYZE ${s}.items, ${s}.tickets, ${s}.ticket_comments`)
  const { rows: size } = await host.pool.query(`SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'`, [tenant.schema])
  return { tenant, bytes: Number(size[0].bytes) }
}

async function measure(label: string, code: string, rows: { items: number; tickets: number; payload: number }) {
  const { tenant, bytes } = await fill(code, rows)
  const total = rows.items + rows.tickets * 2
  process.stdout.write(`${label}: ${total} rows, ${(bytes / 2 ** 20).toFixed(0)} MB on disk (tables and indexes)\n`)
  const samples: Record<string, { seconds: number; rssMb: number }[]> = { export: [], import: [], clone: [], 'api export': [], 'api import': [], 'api clone': [], pg_dump: [], pg_restore: [] }
  const restoreUrl = new URL(serverUrl)
  for (let round = 0; round < ROUNDS; round++) {
    const archive = path.join(work, `${code}-${round}.plinth-archive`)
    samples.export.push(plinth('tenant', 'export', code, '--out', archive))
    samples.import.push(plinth('tenant', 'import', archive, '--as', `${code}-i${round}`))
    samples.clone.push(plinth('tenant', 'clone', code, '--as', `${code}-c${round}`))
    const viaApi = path.join(work, `${code}-api-${round}.plinth-archive`)
    samples['api export'].push(await api(() => adminCall(`/${code}/export`, {}, viaApi)))
    samples['api import'].push(await api(() => adminCall(`/import?as=${code}-ai${round}`, { body: Readable.toWeb(createReadStream(viaApi)) as any, duplex: 'half', headers: { 'content-type': 'application/vnd.plinth.tenant-archive' } })))
    samples['api clone'].push(await api(() => adminCall(`/${code}/clone`, { body: JSON.stringify({ as: `${code}-ac${round}` }), headers: { 'content-type': 'application/json' } })))
    await fs.rm(viaApi)
    const dump = path.join(work, `${code}-${round}.dump`)
    samples.pg_dump.push(timed('pg_dump', ['-d', database.env.DATABASE_URL!, '-n', tenant.schema, '-Fc', '-Z0', '-f', dump]))
    const target = `plinth_bench_restore_${process.pid}_${round}`
    await withServer(serverUrl, (c) => c.query(`CREATE DATABASE ${target}`))
    restoreUrl.pathname = `/${target}`
    samples.pg_restore.push(timed('pg_restore', ['-d', restoreUrl.toString(), '--no-owner', dump]))
    await withServer(serverUrl, (c) => c.query(`DROP DATABASE ${target}`))
    const archiveBytes = (await fs.stat(archive)).size
    if (round === 0) process.stdout.write(`  archive ${(archiveBytes / 2 ** 20).toFixed(0)} MB, pg_dump -Fc -Z0 ${((await fs.stat(dump)).size / 2 ** 20).toFixed(0)} MB\n`)
    await fs.rm(archive)
    await fs.rm(dump)
    for (const made of [`${code}-i${round}`, `${code}-c${round}`, `${code}-ai${round}`, `${code}-ac${round}`]) await host.tenants.drop(made, made)
  }
  const med = (step: string) => ({ seconds: median(samples[step].map((s) => s.seconds)), rssMb: Math.max(...samples[step].map((s) => s.rssMb)) })
  const result = Object.fromEntries(Object.keys(samples).map((step) => [step, med(step)]))
  const floor = result.pg_dump.seconds + result.pg_restore.seconds
  const ratios = {
    exportThenImport: round2((result.export.seconds + result.import.seconds) / floor),
    clone: round2(result.clone.seconds / floor),
    export: round2(result.export.seconds / result.pg_dump.seconds),
    import: round2(result.import.seconds / result.pg_restore.seconds),
    apiExportThenImport: round2((result['api export'].seconds + result['api import'].seconds) / floor),
    apiClone: round2(result['api clone'].seconds / floor),
  }
  for (const [step, r] of Object.entries(result)) process.stdout.write(`  ${step.padEnd(11)} ${r.seconds.toFixed(2).padStart(7)} s   ${r.rssMb ? `peak RSS ${String(r.rssMb).padStart(4)} MB` : 'in the running server'}\n`)
  process.stdout.write(`  export+import / (pg_dump+pg_restore) ${ratios.exportThenImport}   clone / floor ${ratios.clone}   (goal: within 1.5)\n`)
  process.stdout.write(`  admin API: export+import / floor ${ratios.apiExportThenImport}   clone / floor ${ratios.apiClone}\n`)
  await host.tenants.drop(code, code)
  return { rows: total, bytes, result, ratios }
}

const round2 = (n: number) => Math.round(n * 100) / 100

const results: Record<string, unknown> = {}
try {
  results['100k rows'] = await measure('100k rows', 'small', { items: 50_000, tickets: 25_000, payload: 1 })
  // About 1 KB a row (items and comments), GB gigabytes in all.
  const perGb = 480_000
  if (GB > 0) results[`${GB} GB`] = await measure(`${GB} GB`, 'large', { items: Math.round(perGb * GB), tickets: Math.round(perGb * GB / 2), payload: 30 })
} finally {
  await server.stop()
  await host.close()
  await database.drop()
  await fs.rm(work, { recursive: true, force: true })
}

const file = path.join(PROJECT_ROOT, 'bench/results', `archive-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await fs.writeFile(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, code: codeVersion(), machine: machine(), rounds: ROUNDS, results }, null, 2) + '\n')
process.stdout.write(`written to ${path.relative(PROJECT_ROOT, file)}\n`)
