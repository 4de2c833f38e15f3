// What a user would build instead, from the original sandbox notes: Express 5, cors, a JSON error
// handler, and a withTenantTx that sends begin, set local search_path, the query and commit as
// separate round trips. Same pool size, same statements, same rows as plinth and the floor.
import cors from 'cors'
import express from 'express'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10) })
const schema = process.env.BENCH_SCHEMA ?? 't_bench'

async function withTenantTx<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('begin')
    await client.query(`set local search_path to "${schema}", public`)
    const result = await run(client)
    await client.query('commit')
    return result
  } catch (err) {
    await client.query('rollback')
    throw err
  } finally {
    client.release()
  }
}

const app = express()
app.use(cors({ origin: true, credentials: true }))
app.use(express.json())

app.get('/items', async (req, res) => {
  const limit = Number(req.query.limit ?? 20)
  const offset = Number(req.query.offset ?? 0)
  const { rows } = await withTenantTx((c) =>
    c.query(
      `SELECT id, name, sku, quantity, created_at AS "createdAt", updated_at AS "updatedAt", count(*) OVER () AS total
         FROM items ORDER BY name, id LIMIT $1 OFFSET $2`,
      [limit, offset],
    ),
  )
  res.json({ items: rows.map(({ total, ...item }) => item), total: Number(rows[0]?.total ?? 0), limit, offset })
})

app.post('/items', async (req, res) => {
  const { rows } = await withTenantTx((c) =>
    c.query(`INSERT INTO items (name) VALUES ($1) RETURNING id, name, sku, quantity, created_at AS "createdAt", updated_at AS "updatedAt"`, [req.body.name]),
  )
  res.status(201).json(rows[0])
})

app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  console.error(err)
  res.status(500).json({ error: 'INTERNAL_ERROR' })
})

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`)
})
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))))
