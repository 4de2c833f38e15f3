// A fresh database for one test file: a new PostgreSQL database on the server named by
// DATABASE_URL, or, without it, a new embedded (PGlite) data folder. Either way the suite runs on
// a real PostgreSQL, and its files never share state. Empty by default; `migrated: true` gives one
// as a host's first start leaves it (every public migration and the job queue applied, no tenant),
// copied from a template made once per set of migration files: a host opens on it in a third of
// the time (a sixth on the embedded database), and most tests want nothing else.
import { PGlite } from '@electric-sql/pglite'
import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import fsSync from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'

export interface TestDatabase {
  mode: 'postgres' | 'embedded'
  /** The environment a host or a CLI process needs to use this database. */
  env: { DATABASE_URL?: string; PLINTH_DATA_DIR: string }
  drop(): Promise<void>
}

export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-test-'))
  const dataDir = path.join(tmp, 'data')
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    if (options.migrated) copyFolder(await migratedEmbeddedTemplate(), dataDir)
    else await copyEmbeddedTemplate(dataDir)
    return { mode: 'embedded', env: { PLINTH_DATA_DIR: dataDir }, drop: () => fs.rm(tmp, { recursive: true, force: true }) }
  }
  const name = `plinth_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const workers = await withServer(serverUrl, citusWorkers)
  // Citus keeps metadata per database: a copy of another would not join the cluster.
  const template = options.migrated && !workers ? await migratedServerTemplate(serverUrl) : undefined
  await withServer(serverUrl, (client) => client.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`))
  if (template) await withServer(url.toString(), (client) => client.query(PER_DATABASE_SETTINGS))
  if (workers) await joinCitusCluster(url, workers)
  return {
    mode: 'postgres',
    env: { DATABASE_URL: url.toString(), PLINTH_DATA_DIR: dataDir },
    drop: async () => {
      // Tenant roles belong to the server, not the database: they go with it (migration public/004).
      const prefix = await withServer(url.toString(), async (client) => {
        const { rows } = await client.query(`SELECT value FROM public.sys_setting WHERE name = 'tenant_role_prefix'`).catch(() => ({ rows: [] }))
        return rows[0]?.value as string | undefined
      }).catch(() => undefined)
      await withServer(serverUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        for (const worker of workers ?? []) {
          await withServer(nodeUrl(serverUrl, worker), (w) => w.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
        }
        if (!prefix) return
        const { rows } = await client.query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, [`${prefix}_`])
        for (const { rolname } of rows) await client.query(`DROP ROLE IF EXISTS "${rolname}"`)
      })
      await fs.rm(tmp, { recursive: true, force: true })
    },
  }
}

/**
 * On a Citus coordinator (DATABASE_URL names one: scripts/citus-cluster.sh), the workers its
 * database has registered; null on a plain PostgreSQL.
 */
async function citusWorkers(client: pg.Client): Promise<{ host: string; port: number }[] | null> {
  const { rows } = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)
  if (rows.length === 0) return null
  const nodes = await client.query<{ host: string; port: number }>(
    `SELECT nodename AS host, nodeport AS port FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid`,
  )
  return nodes.rows
}

function nodeUrl(serverUrl: string, node: { host: string; port: number }, database?: string): string {
  const url = new URL(serverUrl)
  url.hostname = node.host
  url.port = String(node.port)
  if (database) url.pathname = `/${database}`
  return url.toString()
}

/** Citus keeps its metadata per database: a new one needs the extension on every node and its workers registered. */
async function joinCitusCluster(url: URL, workers: { host: string; port: number }[]) {
  const name = url.pathname.slice(1)
  for (const worker of workers) {
    await withServer(nodeUrl(url.toString(), worker, 'postgres'), (client) => client.query(`CREATE DATABASE ${name}`))
    await withServer(nodeUrl(url.toString(), worker), (client) => client.query('CREATE EXTENSION citus'))
  }
  await withServer(url.toString(), async (client) => {
    await client.query('CREATE EXTENSION citus')
    await client.query('SELECT citus_set_coordinator_host($1, $2)', [url.hostname, Number(url.port || 5432)])
    for (const worker of workers) await client.query('SELECT citus_add_node($1, $2)', [worker.host, worker.port])
  })
}

/** One connection to `url` for `work`, closed after. */
export async function withServer<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

// initdb is most of what a new PGlite data folder costs; do it once per machine and copy the result.
// The template is keyed by PGlite's version: a new PGlite gets a new template.
const TEMPLATE = path.join(os.tmpdir(), `plinth-pglite-template-${await pgliteVersion()}`)

async function pgliteVersion(): Promise<string> {
  let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'))
  for (;;) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'))
      if (pkg.name === '@electric-sql/pglite') return pkg.version
    } catch {}
    if (path.dirname(dir) === dir) return 'unknown'
    dir = path.dirname(dir)
  }
}

/**
 * A data folder (about 1,000 files, 39 MB) copied whole. cpSync, not fs.cp: the promise version
 * goes through the thread pool file by file and took twice as long (0.8 s against 0.4 s on Node 20).
 */
function copyFolder(from: string, to: string) {
  fsSync.cpSync(from, to, { recursive: true })
}

async function copyEmbeddedTemplate(dataDir: string) {
  try {
    await fs.access(path.join(TEMPLATE, 'PG_VERSION'))
  } catch {
    const building = `${TEMPLATE}.${process.pid}.${randomBytes(4).toString('hex')}`
    const db = await PGlite.create(building)
    await db.close()
    // Another process may have won the race; either copy is a valid template.
    await fs.rename(building, TEMPLATE).catch(() => fs.rm(building, { recursive: true, force: true }))
  }
  copyFolder(TEMPLATE, dataDir)
}

/**
 * What migrations make for each database that a copy does not inherit: the random settings
 * (public/004, public/006), or two test databases on one server would name their tenants' roles
 * alike (roles are the server's) and share a change channel; and the database's own privileges
 * (public/006's REVOKE TEMPORARY), which CREATE DATABASE ... TEMPLATE does not copy. A migration
 * that adds another value of its own to each database must add it here too.
 */
const PER_DATABASE_SETTINGS = `
  UPDATE public.sys_setting SET value = 'plinth_' || substr(md5(random()::text || clock_timestamp()::text || current_database()), 1, 8) WHERE name = 'tenant_role_prefix';
  UPDATE public.sys_setting SET value = 'plinth_change_' || substr(md5(gen_random_uuid()::text || clock_timestamp()::text), 1, 16) WHERE name = 'change_channel';
  UPDATE public.sys_setting SET value = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') WHERE name = 'tenant_login_secret';
  DO $$ BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO CURRENT_USER', current_database());
  END $$;`

/** The migrated templates' key: the public migration files and the job queue's version. */
async function migratedKey(): Promise<string> {
  const { HOST_MIGRATIONS_DIR, PROJECT_ROOT } = await import('../app/paths.ts')
  const hash = createHash('sha256')
  const dir = path.join(HOST_MIGRATIONS_DIR, 'public')
  for (const file of (await fs.readdir(dir)).sort()) hash.update(file).update(await fs.readFile(path.join(dir, file)))
  hash.update(JSON.parse(await fs.readFile(path.join(PROJECT_ROOT, 'node_modules/graphile-worker/package.json'), 'utf8')).version)
  return hash.digest('hex').slice(0, 12)
}

/** Opens a host on `env`'s database, which migrates it as a first start does, and closes it. */
async function migrate(env: Record<string, string>) {
  const [{ loadConfig }, { Host }, { createLogger }] = await Promise.all([import('../app/config.ts'), import('../app/host.ts'), import('../platform/logger.ts')])
  const config = loadConfig({ ...env, LOG_LEVEL: 'warn', PLINTH_ENV_FILE: 'none' })
  const host = await Host.open({ config, log: createLogger(config, process.stderr), modules: false, requests: false, followChanges: false })
  await host.close()
}

/**
 * `<family>_<key>` on the server (`plinth_template_<key>` for the suites), made by the first test
 * that needs it; the family's older keys are dropped as it is made.
 *
 * DATABASE_URL may lead through PgBouncer in transaction mode, where a connection is a server
 * connection only for the length of a transaction. So the builders' lock is a transaction's
 * (a session's lock could be taken on one server connection and released on another, then never,
 * and every later builder would wait on it), and the build's own connections, left idle in
 * PgBouncer's pool, are ended before the rename, which needs the database to itself.
 */
export async function migratedServerTemplate(serverUrl: string, family = 'plinth_template'): Promise<string> {
  const template = `${family}_${await migratedKey()}`
  const made = async (client: pg.Client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [template])).rowCount === 1
  // A template exists only once whole (it is renamed into place): most tests need no lock.
  if (await withServer(serverUrl, made)) return template
  return withServer(serverUrl, async (lock) => {
    await lock.query('BEGIN')
    try {
      await lock.query(`SELECT pg_advisory_xact_lock(hashtext('plinth test template'))`)
      return await withServer(serverUrl, async (client) => {
        if (await made(client)) return template
        const older = await client.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${family.replaceAll('_', '\\_')}\\_%`])
        for (const { datname } of older.rows) await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`)
        const building = `${template}_building`
        await client.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`)
        await client.query(`CREATE DATABASE ${building}`)
        const url = new URL(serverUrl)
        url.pathname = `/${building}`
        await migrate({ DATABASE_URL: url.toString() })
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [building])
        await client.query(`ALTER DATABASE ${building} RENAME TO ${template}`)
        return template
      })
    } finally {
      await lock.query('COMMIT')
    }
  })
}

/** The embedded template, migrated: a folder beside TEMPLATE, keyed like the server's. */
async function migratedEmbeddedTemplate(): Promise<string> {
  const template = `${TEMPLATE}-migrated-${await migratedKey()}`
  try {
    await fs.access(path.join(template, 'PG_VERSION'))
    return template
  } catch {}
  const building = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`
  await copyEmbeddedTemplate(building)
  await migrate({ PLINTH_DATA_DIR: building })
  // The embedded database's run folder (its socket and owner file) is not the template's.
  await fs.rm(`${building}.run`, { recursive: true, force: true })
  // Another process may have won the race; either copy is a valid template.
  await fs.rename(building, template).catch(() => fs.rm(building, { recursive: true, force: true }))
  return template
}
