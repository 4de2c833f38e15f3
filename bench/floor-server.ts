// The floor: a hand-written minimal Fastify app doing the same database work as plinth's
// GET/POST /api/plugins/inventory/items (BEGIN + transaction-local search_path in one round trip,
// the same statement, COMMIT) with no auth, no RBAC, no modules: what the work itself costs.
// FLOOR_PIPELINE=1 sends BEGIN without waiting for it, on pipelining clients, as plinth does: the
// same statements in two round trips instead of three, BEGIN and the statement in one socket
// write. FLOOR_SETTINGS=1 opens the transaction as plinth does, as the tenant's role (BENCH_ROLE)
// with statement and lock timeouts: what those settings cost PostgreSQL, apart from anything
// plinth's code does.
import Fastify from 'fastify'
import pg from 'pg'

const pipelined = process.env.FLOOR_PIPELINE === '1'
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10), pipeline: pipelined })
const schema = process.env.BENCH_SCHEMA ?? 't_bench'
const settings = process.env.FLOOR_SETTINGS === '1'
// FLOOR_PREPARED=1 (with FLOOR_SETTINGS=1): BEGIN, then the settings and the statement as named
// prepared statements, parsed and planned once per connection instead of once per request: what
// that would save PostgreSQL (a look at it for plinth, issue #27).
const prepared = settings && process.env.FLOOR_PREPARED === '1'
const begin = settings
  ? `BEGIN; SELECT set_config('role', '${process.env.BENCH_ROLE}', true), set_config('search_path', '${schema}, public', true), ` +
    `set_config('statement_timeout', '30000', true), set_config('lock_timeout', '5000', true)`
  : `BEGIN; SET LOCAL search_path TO "${schema}", public`
const preparedSettings = {
  name: 'floor_settings',
  text: "SELECT set_config('role', $1, true), set_config('search_path', $2, true), set_config('statement_timeout', $3, true), set_config('lock_timeout', $4, true)",
  values: [process.env.BENCH_ROLE, `${schema}, public`, '30000', '5000'],
}
/** A statement as the floor sends it: named (prepared once per connection) under FLOOR_PREPARED. */
const statement = (name: string, text: string, values: unknown[]) => (prepared ? { name, text, values } : { text, values })
const app = Fastify()

async function inTenant<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    const socket = (client as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream
    if (pipelined) {
      socket.cork()
      process.nextTick(() => socket.uncork())
    }
    const begun = prepared ? Promise.all([client.query('BEGIN'), client.query(preparedSettings)]) : client.query(begin)
    if (!pipelined) await begun
    const result = await work(client)
    await begun
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK')
    throw err
  } finally {
    client.release()
  }
}

app.get('/items', async (request) => {
  const { limit = '20', offset = '0' } = request.query as Record<string, string>
  const { rows } = await inTenant((c) =>
    c.query(
      statement(
        'floor_list',
        `SELECT id, name, sku, quantity, created_at AS "createdAt", updated_at AS "updatedAt", count(*) OVER () AS total
         FROM items ORDER BY name, id LIMIT $1 OFFSET $2`,
        [Number(limit), Number(offset)],
      ),
    ),
  )
  return { items: rows.map(({ total, ...item }) => item), total: Number(rows[0]?.total ?? 0), limit: Number(limit), offset: Number(offset) }
})

app.post('/items', async (request, reply) => {
  const { name } = request.body as { name: string }
  const { rows } = await inTenant((c) =>
    c.query(statement('floor_create', `INSERT INTO items (name) VALUES ($1) RETURNING id, name, sku, quantity, created_at AS "createdAt", updated_at AS "updatedAt"`, [name])),
  )
  return reply.code(201).send(rows[0])
})

await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`listening ${(app.server.address() as { port: number }).port}\n`)
process.on('SIGTERM', () => app.close().then(() => pool.end()).then(() => process.exit(0)))
