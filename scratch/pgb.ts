import { startPgBouncer } from '../src/testing/pgbouncer.ts'
import pg from 'pg'
const b = await startPgBouncer('transaction', 'postgres://postgres@127.0.0.1:5432/test')
const c = new pg.Client({ connectionString: b.urlFor('postgres://postgres@127.0.0.1:5432/test') })
await c.connect()
console.log((await c.query('select 1 as x')).rows, b.port)
await c.end(); await b.stop()
