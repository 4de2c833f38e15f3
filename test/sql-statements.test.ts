// Migration files sent statement by statement (as plinth does on Citus, which refuses several
// commands in one query): the split falls where PostgreSQL's own would, and the statements, sent
// one by one, do what the file does when sent whole.
import t from 'tap'
import { runScript } from '../src/platform/db/scripts.ts'
import { splitSqlStatements } from '../src/platform/db/sql-statements.ts'
import { startTestHost } from '../src/testing/host.ts'

const cases: { name: string; sql: string; statements: number }[] = [
  { name: 'semicolons in strings', sql: "CREATE TABLE s (x text DEFAULT 'a;b');\nINSERT INTO s VALUES ('it''s; here');", statements: 2 },
  { name: 'a backslash-escaped quote in an E string', sql: "CREATE TABLE e (x text);\nINSERT INTO e VALUES (E'a\\';b');", statements: 2 },
  { name: 'a quoted identifier', sql: 'CREATE TABLE "we;ird" (id int);\nINSERT INTO "we;ird" VALUES (1);', statements: 2 },
  {
    name: 'dollar-quoted function bodies, tagged and not',
    sql: `CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN PERFORM 1; RETURN 1; END $body$;
CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'x;y'; END $$;
CREATE TABLE d AS SELECT f() AS n, g() AS t;`,
    statements: 3,
  },
  { name: 'line and nested block comments', sql: '-- first; not a statement\nCREATE TABLE c (id int); /* a; /* nested; */ still; */\nINSERT INTO c VALUES (1); -- trailing; comment', statements: 2 },
  {
    name: 'a SQL-standard function body (BEGIN ATOMIC ... END), with a CASE inside',
    sql: `CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN x > 0 THEN x ELSE 0 END; END;
CREATE TABLE a AS SELECT h(5) AS n;`,
    statements: 2,
  },
  { name: 'empty statements and a file that ends in a comment', sql: 'CREATE TABLE z (id int);;\n ;\n-- the end', statements: 1 },
]

const th = await startTestHost()
t.teardown(th.close)

for (const { name, sql, statements } of cases) {
  t.test(name, async (t) => {
    t.equal(splitSqlStatements(sql).length, statements, 'split where PostgreSQL ends a statement')
    const made: Record<string, unknown>[][] = []
    for (const server of ['postgres', 'citus'] as const) {
      const client = await th.host.pool.connect()
      try {
        await client.query('BEGIN; CREATE SCHEMA split_check; SET LOCAL search_path TO split_check')
        await runScript(client, sql, server)
        const { rows } = await client.query(
          `SELECT c.relname, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM split_check.%I', c.relname), false, true, '')))[1]::text AS rows
             FROM pg_class c WHERE c.relnamespace = 'split_check'::regnamespace AND c.relkind = 'r' ORDER BY 1`,
        )
        made.push(rows)
      } finally {
        await client.query('ROLLBACK')
        client.release()
      }
    }
    t.same(made[1], made[0], 'statement by statement makes what the whole file makes')
    t.ok(made[0].length > 0)
  })
}

t.test('a failing statement stops the rest, and says which failed', async (t) => {
  const client = await th.host.pool.connect()
  try {
    await client.query('BEGIN')
    await t.rejects(runScript(client, 'SELECT 1; SELECT * FROM no_such_table; SELECT 2', 'citus'), /no_such_table/)
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
})
