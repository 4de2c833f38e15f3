// A tiny tenant-scoped resource the host suites drive through real HTTP: a `note` table in each
// tenant's schema, and routes that write, read, fail in each way a handler can, or take their time.
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../../src/app/host.ts'

export async function createNoteTable(host: Host, tenantId: string) {
  await host.withTenantTx(tenantId, async (db) => {
    await db.execute(sql`CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL CHECK (body NOT LIKE 'forbidden%'))`)
    // Refuses a row at COMMIT, not at INSERT: the only way to see a COMMIT fail on demand.
    await db.execute(sql.raw(`CREATE FUNCTION note_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.body = 'refuse-at-commit' THEN RAISE EXCEPTION 'note refused at commit: secret-detail-42'; END IF;
        IF NEW.body = 'conflict-at-commit' THEN RAISE EXCEPTION 'duplicate note at commit' USING ERRCODE = 'unique_violation'; END IF;
        RETURN NEW;
      END $$`))
    await db.execute(sql`CREATE CONSTRAINT TRIGGER note_refuse AFTER INSERT ON note DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION note_refuse()`)
  })
}

export async function noteRoutes(scope: FastifyInstance) {
  scope.get('/notes', async (request) => {
    const { rows } = await request.db.execute(sql`SELECT id, body FROM note ORDER BY id`)
    return { notes: rows }
  })

  scope.post(
    '/notes',
    {
      schema: {
        body: Type.Object({ body: Type.String({ minLength: 1, maxLength: 100 }), then: Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { body, then } = request.body as { body: string; then?: string }
      const { rows } = await request.db.execute(sql`INSERT INTO note (body) VALUES (${body}) RETURNING id, body`)
      if (then === 'throw') throw new Error('handler failed after writing: secret-detail-42')
      if (then === 'reply-422') return reply.code(422).send({ error: 'UNPROCESSABLE' })
      if (then === 'reply-400') return reply.code(400).send({ error: 'BAD' })
      if (then === 'reply-399') return reply.code(399).send({ kept: true })
      // Answers later, while the caller may have gone.
      if (then === 'hold') await new Promise((resolve) => setTimeout(resolve, 400))
      if (then === 'bad-sql') await request.db.execute(sql`SELECT * FROM no_such_table_secret_detail_42`)
      // A handler that catches a failed statement and carries on: the transaction is aborted anyway.
      if (then === 'swallow-sql-error') await request.db.execute(sql`SELECT * FROM no_such_table`).catch(() => {})
      // Its connection dies under it (PostgreSQL only: the embedded database has one backend).
      // Ended from outside: the tenant's role may not signal the host's backends.
      const loseConnection = async () => {
        const { rows } = await request.db.execute(sql`SELECT pg_backend_pid() AS pid`)
        await request.server.plinth.pool.query('SELECT pg_terminate_backend($1::int)', [rows[0].pid])
        return request.db.execute(sql`SELECT 1`)
      }
      if (then === 'lose-connection') await loseConnection()
      if (then === 'lose-connection-quietly') await loseConnection().catch(() => {})
      // The network between host and database drops (either database): the socket is cut.
      if (then === 'cut-socket') {
        ;((await request.transaction!.open()).client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
        await request.db.execute(sql`SELECT 1`)
      }
      // Says its length up front, as a handler may: a COMMIT that fails must still answer whole.
      if (then === 'with-length') reply.header('content-length', Buffer.byteLength(JSON.stringify(rows[0])))
      return reply.code(201).send(rows[0])
    },
  )

  // Holds its transaction (and pooled client) open on a JS timer. pg_sleep would do on PostgreSQL,
  // but PGlite runs in this thread and its pg_sleep would stall every timer along with it.
  scope.get('/hold', async (request) => {
    const { ms } = request.query as { ms?: string }
    await request.db.execute(sql`SELECT 1`)
    await new Promise((resolve) => setTimeout(resolve, Number(ms ?? 100)))
    return { held: Number(ms ?? 100) }
  })

  // Writes a note, then waits for its caller to leave and stops without answering (a handler that
  // notices nobody is listening). Fastify sends nothing for it: no onSend ever runs.
  scope.post('/notes/until-caller-leaves', async (request) => {
    await request.db.execute(sql`INSERT INTO note (body) VALUES ('written-for-a-caller-who-left')`)
    while (!request.raw.socket?.destroyed) await new Promise((resolve) => setTimeout(resolve, 10))
  })

  // Says it answers later (returns reply), and never does: a module bug the caller gives up on.
  scope.post('/notes/answer-never', async (request, reply) => {
    await request.db.execute(sql`INSERT INTO note (body) VALUES ('written-for-an-answer-never-sent')`)
    return reply
  })

  // Takes the raw response over: Fastify runs no onSend for it, so nothing commits its work.
  scope.post('/notes/hijacked', async (request, reply) => {
    await request.db.execute(sql`INSERT INTO note (body) VALUES ('written-under-a-hijacked-reply')`)
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('raw answer')
  })

  // PostgreSQL only: pg_sleep on the embedded database stalls the test's own thread.
  scope.get('/sleep', async (request) => {
    const { s } = request.query as { s?: string }
    await request.db.execute(sql`SELECT pg_sleep(${Number(s ?? 1)})`)
    return { slept: Number(s ?? 1) }
  })

  scope.get('/search-path', async (request) => {
    const { rows } = await request.db.execute(sql`SELECT current_schema() AS schema, current_setting('search_path') AS path`)
    return rows[0]
  })
}
