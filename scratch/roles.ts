import { PGlite } from '@electric-sql/pglite'
const db = await PGlite.create()
for (const q of [
  `select current_user, (select rolsuper from pg_roles where rolname = current_user) as su, version()`,
  `create role r_acme nologin`,
  `create schema t_acme`,
  `grant usage, create on schema t_acme to r_acme`,
  `create table public.secret (x int)`,
  `begin; set local role r_acme; set local search_path to t_acme, public; create table items (id int); select current_user; commit`,
  `begin; set local role r_acme; select * from public.secret; commit`,
]) {
  try { console.log(q.slice(0, 40), JSON.stringify((await db.exec(q)).map(r => r.rows))) } catch (e: any) { console.log(q.slice(0, 40), 'ERR', e.message); await db.exec('rollback').catch(() => {}) }
}
