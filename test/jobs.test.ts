// Modules' jobs (host API 1.2), as a stranger's module uses them: enqueued in the request's own
// transaction (a rollback enqueues nothing, a commit exactly once), run in the tenant's
// transaction as its role, retried and then kept as failed, passed over while the tenant is
// suspended or the module disabled, discarded with a dropped tenant, fanned out by a schedule,
// and held to the tenant boundary: a job cannot reach another tenant, and a module cannot enqueue
// for one. Runs on every pass (PostgreSQL, the embedded database, PgBouncer).
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { startTestHost, TEST_ADMIN_TOKEN, type TestHost } from '../src/testing/host.ts'
import { cancelJobs, listJobs, retryJobs, showJob } from '../src/jobs/operations.ts'
import { spawn } from 'node:child_process'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { childEnv, finished, plinth, startServer } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'
import { countDatabaseWork } from './helpers/count-database-work.ts'

const MAILER: Record<string, string> = {
  'mailer/module.config.ts': `export default { id: 'mailer', name: 'Mailer', version: '1.0.0', api: '^1.2', permissions: ['mailer.mail.send'] }\n`,
  'mailer/plugin.ts': `import { sql } from 'drizzle-orm'
import { Type } from 'typebox'
export const permissions = ['mailer.mail.send']
export default {
  meta: { id: 'mailer', name: 'Mailer', version: '1.0.0', api: '^1.2' },
  async register(ctx) {
    ctx.jobs.define('deliver', async (payload, job) => {
      if (payload.fail) throw new Error('smtp down for ' + payload.to)
      await job.db.execute(sql\`INSERT INTO sent (recipient, attempt, run_as, tenant_code) VALUES (\${payload.to}, \${job.attempt}, current_user, \${job.tenant.code})\`)
      if (payload.then) await ctx.jobs.enqueue('deliver', { to: payload.then })
    }, { maxAttempts: 2, schema: Type.Object({ to: Type.String(), fail: Type.Optional(Type.Boolean()), then: Type.Optional(Type.String()) }) })
    // Its first attempt hangs (its worker is killed under it); the next one finishes.
    ctx.jobs.define('slow', async (payload, job) => {
      if (job.attempt === 1) await new Promise((resolve) => setTimeout(resolve, 120_000))
      await job.db.execute(sql\`INSERT INTO sent (recipient, attempt, run_as, tenant_code) VALUES (\${payload.to}, \${job.attempt}, current_user, \${job.tenant.code})\`)
    })
    ctx.jobs.define('pause', async (payload, job) => {
      await new Promise((resolve) => setTimeout(resolve, payload.ms))
      await job.db.execute(sql\`INSERT INTO sent (recipient, attempt, run_as, tenant_code) VALUES (\${payload.to}, \${job.attempt}, current_user, \${job.tenant.code})\`)
    })
    ctx.router.post('/slow', ctx.rbac.require('mailer.mail.send'), async (req, res) => {
      await ctx.jobs.enqueue(req.body.ms ? 'pause' : 'slow', { to: req.body.to, ms: req.body.ms })
      res.status(202).json({ queued: true })
    })
    ctx.jobs.define('escape', async (payload, job) => {
      await job.db.execute(sql.raw(payload.sql))
    }, { maxAttempts: 1 })
    ctx.jobs.define('digest', async (payload, job) => {
      await job.db.execute(sql\`INSERT INTO sent (recipient, attempt, run_as, tenant_code) VALUES ('digest', \${job.attempt}, current_user, \${job.tenant.code})\`)
    })
    ctx.jobs.schedule('digest', '0 7 * * *')
    ctx.router.post('/mail', ctx.rbac.require('mailer.mail.send'), async (req, res) => {
      await req.db.execute(sql\`INSERT INTO outbox (recipient) VALUES (\${String(req.body.to ?? req.body.payload?.to)})\`)
      await ctx.jobs.enqueue('deliver', req.body.payload ?? { to: req.body.to }, { key: req.body.key })
      if (req.body.rollback) return res.status(409).json({ rolledBack: true })
      res.status(202).json({ queued: true })
    })
    ctx.router.post('/note', ctx.rbac.require('mailer.mail.send'), async (req, res) => {
      await req.db.execute(sql\`INSERT INTO outbox (recipient) VALUES (\${String(req.body.to)})\`)
      res.status(202).json({ queued: false })
    })
    ctx.jobs.define('noop', async () => {})
    ctx.router.post('/escape', ctx.rbac.require('mailer.mail.send'), async (req, res) => {
      await ctx.jobs.enqueue('escape', { sql: req.body.sql })
      res.status(202).json({ queued: true })
    })
    ctx.router.post('/forge', ctx.rbac.require('mailer.mail.send'), async (req, res) => {
      await req.db.execute(sql\`INSERT INTO public.sys_job_intake (tenant_role, module_id, job, payload) VALUES (\${req.body.role}, 'mailer', 'deliver', '{"to":"forged"}')\`)
      res.json({ forged: true })
    })
  },
}
`,
  'mailer/migrations/001_mail.sql': `CREATE TABLE outbox (id serial PRIMARY KEY, recipient text NOT NULL);
CREATE TABLE sent (id serial PRIMARY KEY, recipient text NOT NULL, attempt int NOT NULL, run_as text NOT NULL, tenant_code text NOT NULL);
`,
}

async function mailerHost(t: Test, tenants = ['acme', 'globex'], env: Record<string, string> = {}) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-jobs-modules-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  for (const [file, text] of Object.entries(MAILER)) {
    await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true })
    await fs.writeFile(path.join(root, file), text)
  }
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: root, ...env } })
  t.teardown(th.close)
  const mailer = th.host.modules.find((m) => m.id === 'mailer')
  t.equal(mailer?.status, 'loaded', `the stranger's module loads (${mailer?.reason ?? 'no reason given'})`)
  const keys: Record<string, string> = {}
  for (const code of tenants) {
    const tenant = await th.createTenant(code)
    await th.host.roles.create(tenant, 'sender', 'sends mail')
    await th.host.roles.grant(tenant, 'sender', 'mailer.mail.send')
    keys[code] = (await th.host.createKey(code, 'sender', ['sender'])).key
  }
  const post = (code: string, url: string, body: unknown) =>
    th.app.inject({ method: 'POST', url: `/api/plugins/mailer${url}`, headers: { 'x-tenant': code, authorization: `Bearer ${keys[code]}` }, payload: body as object })
  return { th, post, root }
}

async function sent(th: TestHost, code: string) {
  const { rows } = await th.host.pool.query(`SELECT recipient, attempt, run_as, tenant_code FROM ${th.host.registry.byCode(code)!.schema}.sent ORDER BY id`)
  return rows
}

async function roleOf(th: TestHost, code: string) {
  const { rows } = await th.host.pool.query('SELECT role_name FROM public.sys_tenant WHERE code = $1', [code])
  return rows[0].role_name as string
}

t.test('a request that commits enqueues its job once; one that rolls back enqueues nothing; the job runs as its tenant', async (t) => {
  const { th, post } = await mailerHost(t)
  t.equal((await post('acme', '/mail', { to: 'ann@acme.test' })).statusCode, 202)
  t.equal((await post('acme', '/mail', { to: 'bob@acme.test', rollback: true })).statusCode, 409)
  const first = await th.runJobs()
  t.same(first, { completed: 1, failed: 0 }, 'one job ran: the rolled-back request enqueued none')
  t.same(await sent(th, 'acme'), [{ recipient: 'ann@acme.test', attempt: 1, run_as: await roleOf(th, 'acme'), tenant_code: 'acme' }], "in acme's transaction, as acme's role")
  t.same(await sent(th, 'globex'), [], 'nothing in the other tenant')
  t.same(await th.runJobs(), { completed: 0, failed: 0 }, 'and it ran once')
})

t.test('an enqueue costs the request one statement and no round trip of its own', async (t) => {
  const { th, post } = await mailerHost(t, ['acme'])
  // Warm: the tenant's connection logged in, the key and roles cached.
  await post('acme', '/note', { to: 'warm@acme.test' })
  await post('acme', '/mail', { to: 'warm@acme.test' })
  // The change feed's polling (through PgBouncer, on the platform's pool) is not the request's work.
  await th.host.changes.stop()
  // Work outside the request (an idle connection's check, a timer) only ever adds to a count: the
  // least of three of each is the request's own.
  const least = async (url: string) => {
    const counts = []
    for (let i = 0; i < 3; i++) counts.push(await countDatabaseWork(() => post('acme', url, { to: 'a@acme.test' })))
    return { statements: Math.min(...counts.map((c) => c.statements)), roundTrips: Math.min(...counts.map((c) => c.roundTrips)) }
  }
  const without = await least('/note')
  const withJob = await least('/mail')
  t.equal(withJob.statements, without.statements + 1, `one statement more (${withJob.statements} against ${without.statements})`)
  t.equal(withJob.roundTrips, without.roundTrips, `and the same round trips (${withJob.roundTrips})`)
})

t.test('metrics: jobs by module and state, the wait from due to start, attempts by outcome', async (t) => {
  const { th, post } = await mailerHost(t, ['acme'])
  t.equal((await post('acme', '/mail', { to: 'ok@acme.test' })).statusCode, 202)
  t.equal((await post('acme', '/mail', { payload: { to: 'no@acme.test', fail: true } })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 1, failed: 1 })
  const text = (await th.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).body
  t.match(text, /plinth_jobs\{module="mailer",state="queued"\} 1\n/, 'the failed one waits to retry')
  t.match(text, /plinth_jobs\{module="mailer",state="running"\} 0\n/)
  t.match(text, /plinth_job_start_delay_seconds_count\{module="mailer"\} 2\n/, 'two attempts started')
  t.match(text, /plinth_job_duration_seconds_count\{module="mailer",outcome="completed"\} 1\n/)
  t.match(text, /plinth_job_duration_seconds_count\{module="mailer",outcome="failed"\} 1\n/)
})

t.test('a job enqueues in its own transaction; a key keeps one job waiting; a payload off its schema is refused at enqueue', async (t) => {
  const { th, post } = await mailerHost(t, ['acme'])
  t.equal((await post('acme', '/mail', { payload: { to: 'first@acme.test', then: 'second@acme.test' } })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 2, failed: 0 }, 'the job, then the one it enqueued')
  t.same((await sent(th, 'acme')).map((r) => r.recipient), ['first@acme.test', 'second@acme.test'])

  for (const to of ['one@acme.test', 'two@acme.test']) t.equal((await post('acme', '/mail', { to, key: 'digest-ann' })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 1, failed: 0 }, 'two enqueues under one key: one job')
  t.equal((await sent(th, 'acme')).at(-1).recipient, 'two@acme.test', 'with the later payload')

  const refused = await post('acme', '/mail', { payload: { to: 42 } })
  t.equal(refused.statusCode, 500, 'the handler threw')
  t.match(th.rawLogs(), /payload does not match the job's schema/, 'the log says why')
  const { rows } = await th.host.pool.query(`SELECT count(*)::int AS n FROM ${th.host.registry.byCode('acme')!.schema}.outbox`)
  t.equal(rows[0].n, 3, 'and its request wrote nothing')
  t.same(await th.runJobs(), { completed: 0, failed: 0 })
})

t.test('a failing job is retried, then kept as failed with its last error; operators see it, retry it, cancel it', async (t) => {
  const { th, post } = await mailerHost(t, ['acme'])
  t.equal((await post('acme', '/mail', { payload: { to: 'x@acme.test', fail: true } })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 0, failed: 1 })
  let [job] = await listJobs(th.host.pool, { module: 'mailer' }, 10)
  t.match(job, { tenant: 'acme', module: 'mailer', job: 'deliver', state: 'queued', attempts: 1, maxAttempts: 2, lastError: /smtp down for x@acme.test/ })
  t.ok(new Date(job!.runAt).getTime() > Date.now(), 'its next attempt is later (backoff)')
  t.same(await th.runJobs(), { completed: 0, failed: 0 }, 'not due yet')
  await th.host.pool.query('SELECT graphile_worker.reschedule_jobs(ARRAY[$1::bigint], run_at := now())', [job!.id])
  t.same(await th.runJobs(), { completed: 0, failed: 1 }, 'the second and last attempt fails too')
  job = (await showJob(th.host.pool, job!.id))!
  t.match(job, { state: 'failed', attempts: 2, payload: { to: 'x@acme.test', fail: true } })
  t.same(await listJobs(th.host.pool, { state: 'failed' }, 10).then((l) => l.map((j) => j.id)), [job!.id], 'listed by state')
  t.same(await th.runJobs(), { completed: 0, failed: 0 }, 'a failed job does not run again by itself')
  t.ok(th.logs.some((l) => l.job === job!.id && l.level === 50 && /failed for the last time/.test(l.msg)), 'its failure is logged with its id')

  t.same(await retryJobs(th.host.pool, [job!.id]), [job!.id])
  t.match(await showJob(th.host.pool, job!.id), { state: 'queued', attempts: 0 }, 'retried: due now, attempts reset')
  t.same(await cancelJobs(th.host.pool, [job!.id]), [job!.id])
  t.equal(await showJob(th.host.pool, job!.id), undefined, 'cancelled: out of the queue')
})

t.test('retries that failed together are spread: the backoff has jitter', async (t) => {
  const { th, post } = await mailerHost(t, ['acme'])
  for (let i = 0; i < 6; i++) t.equal((await post('acme', '/mail', { payload: { to: `r${i}@acme.test`, fail: true } })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 0, failed: 6 })
  // graphile-worker alone: every retry exactly e^1 s after its failure (updated_at).
  const { rows } = await th.host.pool.query(`SELECT extract(epoch FROM run_at - updated_at)::float8 AS delay FROM graphile_worker._private_jobs`)
  const delays = rows.map((r) => r.delay as number)
  // The bounds allow a second of slack: on the embedded database a statement's now() is its transaction's start.
  t.ok(delays.every((d) => d > Math.E - 0.2 && d < Math.E * 1.5 + 1), `each within e^1 and half as much again (${delays.map((d) => d.toFixed(3)).join(', ')})`)
  t.ok(new Set(delays.map((d) => d.toFixed(2))).size >= 3, 'and not all the same')
})

t.test("a suspended tenant's jobs and a disabled module's wait; a dropped tenant's are discarded", async (t) => {
  const { th, post } = await mailerHost(t)
  for (const code of ['acme', 'globex']) t.equal((await post(code, '/mail', { to: `ann@${code}.test` })).statusCode, 202)
  await th.host.tenants.suspend('acme')
  await th.host.disableModule('globex', 'mailer')
  t.same(await th.runJobs(), { completed: 0, failed: 0 }, 'neither runs')
  t.equal((await listJobs(th.host.pool, {}, 10)).length, 2, 'both wait, untouched')
  await th.host.tenants.resume('acme')
  t.same(await th.runJobs(), { completed: 1, failed: 0 }, "acme's runs once it is resumed")
  t.equal((await sent(th, 'acme')).length, 1)
  await th.host.enableModule('globex', 'mailer')
  t.same(await th.runJobs(), { completed: 1, failed: 0 }, "globex's runs once the module is enabled again")

  t.equal((await post('globex', '/mail', { to: 'late@globex.test' })).statusCode, 202)
  await th.host.tenants.drop('globex', 'globex')
  t.same(await listJobs(th.host.pool, {}, 10), [], "the dropped tenant's job went with it")
  t.same(await th.runJobs(), { completed: 0, failed: 0 })
})

t.test('a schedule fans out to one job per tenant with the module enabled, once per period however often it fires', async (t) => {
  const { th } = await mailerHost(t, ['acme', 'globex', 'initech'])
  await th.host.disableModule('initech', 'mailer')
  // What graphile-worker's cron adds when the period begins (on one host of all), twice: as if two hosts fired it.
  for (let i = 0; i < 2; i++) {
    await th.host.pool.query(`SELECT graphile_worker.add_job('$plinth.schedule', $1::json)`, [JSON.stringify({ module: 'mailer', job: 'digest', payload: null, _cron: { ts: '2026-12-07T07:00:00.000Z' } })])
  }
  await th.runJobs()
  t.same((await sent(th, 'acme')).map((r) => r.recipient), ['digest'], 'acme: one digest')
  t.same((await sent(th, 'globex')).map((r) => r.recipient), ['digest'], 'globex: one digest')
  t.same(await sent(th, 'initech'), [], 'initech, with the module disabled: none')
})

t.test('a job is held to its tenant: the escapes a module might try from one are refused, and no module enqueues for another tenant', async (t) => {
  const { th, post } = await mailerHost(t)
  const globex = th.host.registry.byCode('globex')!
  const escapes = [
    `SELECT count(*) FROM ${globex.schema}.sent`,
    `INSERT INTO ${globex.schema}.sent (recipient, attempt, run_as, tenant_code) VALUES ('stolen', 1, 'x', 'x')`,
    `SELECT count(*) FROM public.sys_tenant`,
    `INSERT INTO public.sys_job_intake (tenant_role, module_id, job, payload) VALUES ('${await roleOf(th, 'globex')}', 'mailer', 'deliver', '{"to":"forged"}')`,
    `SELECT graphile_worker.add_job('mailer/deliver', json_build_object('tenant', '${globex.id}', 'payload', json_build_object('to', 'forged')))`,
  ]
  // In 'shared' mode (the embedded database) a role switch leaves the tenant: tenant-scope.test.ts says so; not tried there.
  if (th.host.config.tenantConnections === 'login') escapes.push('SET ROLE NONE; SELECT 1', `SET SESSION AUTHORIZATION DEFAULT`)
  for (const sql of escapes) t.equal((await post('acme', '/escape', { sql })).statusCode, 202)
  const escapesRun = await th.runJobs()
  t.equal(escapesRun.completed, 0, 'no escape succeeded')
  t.equal(escapesRun.failed, escapes.length, 'each one failed')
  t.same(await sent(th, 'globex'), [], "globex's table is untouched")
  t.same(await listJobs(th.host.pool, { tenantId: globex.id }, 10), [], 'no job was enqueued for globex')

  const forged = await post('acme', '/forge', { role: await roleOf(th, 'globex') })
  t.equal(forged.statusCode, 500, "a request's insert naming another tenant's role is refused (row security)")
  t.same(await listJobs(th.host.pool, { tenantId: globex.id }, 10), [], 'still none for globex')
})

t.test('`plinth worker` runs jobs apart from the API; killed mid-job, it loses none: another worker runs it once its lock times out', postgresPassOnly, async (t) => {
  const fast = { PLINTH_JOBS_LOCK_TIMEOUT_MS: '2000', PLINTH_JOBS_POLL_MS: '100' }
  const { th, post, root } = await mailerHost(t, ['acme'], fast)
  t.equal((await post('acme', '/slow', { to: 'slow@acme.test' })).statusCode, 202)
  const worker = spawn(process.execPath, [`${PROJECT_ROOT}/bin/plinth.js`, 'worker'], {
    env: childEnv({ ...th.database.env, PLINTH_MODULE_DIRS: root, LOG_LEVEL: 'info', ...fast }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = finished(worker)
  t.teardown(() => worker.kill('SIGKILL'))
  const deadline = Date.now() + 30_000
  while ((await listJobs(th.host.pool, { state: 'running' }, 10)).length === 0) {
    if (Date.now() > deadline) throw new Error(`the worker never took the job: ${(await exited.then((r) => r.stderr).catch(() => '')) || 'still running'}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.pass('the worker took the job')
  worker.kill('SIGKILL')
  t.equal((await exited).signal, 'SIGKILL')
  t.same(await sent(th, 'acme'), [], 'killed before it finished')

  await th.host.jobs.start()
  const due = Date.now() + 30_000
  while ((await sent(th, 'acme')).length === 0 && Date.now() < due) await new Promise((resolve) => setTimeout(resolve, 200))
  t.same((await sent(th, 'acme')).map((r) => [r.recipient, r.attempt]), [['slow@acme.test', 2]], 'run again, once, as its second attempt')
  await th.host.jobs.stop()

  // SIGTERM while a job runs: it finishes, then the worker exits 0.
  t.equal((await post('acme', '/slow', { to: 'paused@acme.test', ms: 1500 })).statusCode, 202)
  const draining = spawn(process.execPath, [`${PROJECT_ROOT}/bin/plinth.js`, 'worker'], { env: childEnv({ ...th.database.env, PLINTH_MODULE_DIRS: root, LOG_LEVEL: 'info', ...fast }), stdio: ['ignore', 'pipe', 'pipe'] })
  const drained = finished(draining)
  t.teardown(() => draining.kill('SIGKILL'))
  const until = Date.now() + 30_000
  while ((await listJobs(th.host.pool, { state: 'running' }, 10)).length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
  draining.kill('SIGTERM')
  const stopped = await drained
  t.equal(stopped.code, 0, stopped.stderr)
  t.match(stopped.stdout, /worker stopped/)
  t.same((await sent(th, 'acme')).map((r) => r.recipient), ['slow@acme.test', 'paused@acme.test'], 'the job running at SIGTERM finished first')
})

t.test("one tenant's 100,000 queued jobs delay another tenant's job by a few seconds at most", postgresPassOnly, async (t) => {
  const { th, post } = await mailerHost(t, ['acme', 'globex'], { PLINTH_JOBS_POLL_MS: '100' })
  const acme = th.host.registry.byCode('acme')!
  // As public.sys_job_add makes each (migrations/public/010_jobs.sql), in one batch.
  await th.host.pool.query(
    `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
       SELECT ('mailer/noop', json_build_object('tenant', $1::uuid, 'payload', '{}'::json), 'plinth:' || $1, NULL, NULL, NULL, NULL,
               ARRAY['tenant:' || $1, 'module:' || $1 || ':mailer'])::graphile_worker.job_spec
         FROM generate_series(1, 100000)))`,
    [acme.id],
  )
  await th.host.pool.query('ANALYZE graphile_worker._private_jobs')
  await th.host.jobs.start()
  t.teardown(() => th.host.jobs.stop())
  // acme's backlog is being worked through; globex asks for one job now.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const asked = Date.now()
  t.equal((await post('globex', '/mail', { to: 'now@globex.test' })).statusCode, 202)
  while ((await sent(th, 'globex')).length === 0 && Date.now() - asked < 30_000) await new Promise((resolve) => setTimeout(resolve, 50))
  const waited = (Date.now() - asked) / 1000
  t.equal((await sent(th, 'globex')).length, 1, "globex's job ran")
  t.ok(waited < 5, `within ${waited.toFixed(2)} s of its request, behind ${100000} of acme's`)
  const { rows } = await th.host.pool.query(`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE queue_name = 'plinth:' || $1`, [acme.id])
  t.ok(rows[0].n > 90_000, `acme's backlog is still there (${rows[0].n}): globex did not wait for it`)
})

t.test('`plinth jobs list|show|retry|cancel`: what an operator sees and does, each change audited', postgresPassOnly, async (t) => {
  const { th, post, root } = await mailerHost(t, ['acme', 'globex'])
  t.equal((await post('acme', '/mail', { payload: { to: 'x@acme.test', fail: true } })).statusCode, 202)
  t.equal((await post('globex', '/mail', { to: 'y@globex.test' })).statusCode, 202)
  t.same(await th.runJobs(), { completed: 1, failed: 1 })
  const env = { ...th.database.env, PLINTH_MODULE_DIRS: root }
  const listed = await plinth(['jobs', 'list', '--tenant', 'acme', '--json'], env)
  t.equal(listed.code, 0, listed.stderr)
  const [job] = JSON.parse(listed.stdout)
  t.match(job, { tenant: 'acme', module: 'mailer', job: 'deliver', state: 'queued', attempts: 1, lastError: /smtp down/ })
  const text = await plinth(['jobs', 'list'], env)
  t.match(text.stdout, /ID\s+TENANT\s+MODULE\s+JOB\s+STATE/)
  t.match(text.stdout, new RegExp(`${job.id}\\s+acme\\s+mailer\\s+deliver\\s+queued\\s+1/2`))
  const shown = await plinth(['jobs', 'show', job.id], env)
  t.match(shown.stdout, /payload: \{"to":"x@acme.test","fail":true\}/)
  t.match(shown.stdout, /last error: .*smtp down for x@acme.test/)
  t.equal((await plinth(['jobs', 'list', '--state', 'sleeping'], env)).code, 2, 'a state that is not one: usage error')

  const retried = await plinth(['jobs', 'retry', job.id, '999999'], env)
  t.equal(retried.code, 1, 'one of the two was no job')
  t.match(retried.stdout, new RegExp(`retried 1 job: ${job.id}[\\s\\S]*not retried \\(no such job, or running now\\): 999999`))
  t.match(await showJob(th.host.pool, job.id), { attempts: 0, state: 'queued' })
  const cancelled = await plinth(['jobs', 'cancel', job.id], env)
  t.equal(cancelled.code, 0, cancelled.stderr)
  t.equal(await showJob(th.host.pool, job.id), undefined)
  const { rows } = await th.host.pool.query(`SELECT action, target, actor_kind FROM public.audit_event WHERE action LIKE 'jobs.%' ORDER BY seq`)
  t.same(rows.map((r) => [r.action, r.target, r.actor_kind]), [['jobs.retried', job.id, 'cli'], ['jobs.cancelled', job.id, 'cli']], 'one audit row each, by the CLI')
})

t.test('a server runs jobs by default (PLINTH_JOBS=1): a job its API enqueued runs without a worker of its own', async (t) => {
  const { th, root } = await mailerHost(t, ['acme'])
  const key = (await th.host.createKey('acme', 'server-test', ['sender'])).key
  const server = await startServer({ ...th.database.env, PLINTH_MODULE_DIRS: root, PLINTH_JOBS: '1', PLINTH_JOBS_POLL_MS: '100' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const res = await fetch(`${server.url}/api/plugins/mailer/mail`, {
    method: 'POST',
    headers: { 'x-tenant': 'acme', authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'served@acme.test' }),
  })
  t.equal(res.status, 202)
  const until = Date.now() + 20_000
  while ((await sent(th, 'acme')).length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100))
  t.same((await sent(th, 'acme')).map((r) => r.recipient), ['served@acme.test'], 'the server ran it')
  server.child.kill('SIGTERM')
  t.equal((await server.exit).code, 0, 'and stops cleanly')
})
