// A fresh, empty database for one test file: a new PostgreSQL database on the server named by
// DATABASE_URL, or, without it, a new embedded (PGlite) data folder. Either way the suite runs on
// a real PostgreSQL, and its files never share state.
import { PGlite } from '@electric-sql/pglite'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
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

export async function createTestDatabase(): Promise<TestDatabase> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-test-'))
  const dataDir = path.join(tmp, 'data')
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    await copyEmbeddedTemplate(dataDir)
    return { mode: 'embedded', env: { PLINTH_DATA_DIR: dataDir }, drop: () => fs.rm(tmp, { recursive: true, force: true }) }
  }
  const name = `plinth_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const workers = await withServer(serverUrl, citusWorkers)
  await withServer(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`))
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
  await fs.cp(TEMPLATE, dataDir, { recursive: true })
}
