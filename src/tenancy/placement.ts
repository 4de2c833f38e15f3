// Where a tenant's schema lives on a Citus cluster, and moving it to another worker while it
// serves (docs/scale-out.md). Citus's own citus_schema_move does the work, in its block_writes
// mode: the tenant's writes wait while its tables are copied, then go to the new worker; reads go
// on. Its other mode, logical replication, keeps writes flowing during the copy, but writes made
// inside a SAVEPOINT (every withTenantTx call in a request) while it switched over can land in the
// old placement and be lost with it (docs/benchmarks-history.md, "Why the code is so").
import type pg from 'pg'
import { appendAuditAlone } from '../platform/audit/append.ts'
import { HttpProblem } from '../problems.ts'
import type { Tenant } from './registry.ts'

export interface WorkerNode {
  host: string
  port: number
}

export const nodeName = (node: WorkerNode) => `${node.host}:${node.port}`

/** The workers that hold tenant schemas. */
export async function workerNodes(pool: pg.Pool): Promise<WorkerNode[]> {
  const { rows } = await pool.query<WorkerNode>(
    `SELECT nodename AS host, nodeport AS port FROM pg_dist_node
      WHERE isactive AND noderole = 'primary' AND shouldhaveshards ORDER BY nodeid`,
  )
  return rows
}

/** The worker a tenant's schema lives on; null for a schema Citus does not distribute. */
export async function tenantNode(pool: pg.Pool, tenant: Pick<Tenant, 'schema'>): Promise<WorkerNode | null> {
  const { rows } = await pool.query<WorkerNode>(
    `SELECT DISTINCT s.nodename AS host, s.nodeport AS port FROM citus_shards s
      JOIN pg_dist_partition p ON p.logicalrelid = s.table_name
      JOIN pg_class c ON c.oid = p.logicalrelid
     WHERE c.relnamespace = to_regnamespace($1)`,
    [tenant.schema],
  )
  return rows[0] ?? null
}

export interface Move {
  from: WorkerNode
  to: WorkerNode
  ms: number
}

/**
 * Moves a tenant's schema to another worker. `to` is host:port of a worker; the move runs outside
 * any transaction (Citus's rule), and holds no pooled client longer than the move.
 */
export async function moveTenant(pool: pg.Pool, tenant: Tenant, to: string): Promise<Move> {
  const workers = await workerNodes(pool).catch((err) => {
    // pg_dist_node is Citus's: without it this is one PostgreSQL, and there is nowhere to move to.
    if (err?.code === '42P01') throw notCitus()
    throw err
  })
  const target = workers.find((w) => nodeName(w) === to)
  if (!target) {
    throw new HttpProblem(400, 'NODE_NOT_FOUND', `${to} is not a worker of this cluster; workers: ${workers.map(nodeName).join(', ') || 'none'}.`)
  }
  const from = await tenantNode(pool, tenant)
  if (!from) throw new HttpProblem(409, 'TENANT_NOT_DISTRIBUTED', `Tenant ${tenant.code}'s schema is not a distributed schema; nothing to move.`)
  if (nodeName(from) === to) return { from, to: target, ms: 0 }
  const started = performance.now()
  await pool.query(`SELECT citus_schema_move($1::regnamespace, $2::text, $3::int, shard_transfer_mode => 'block_writes')`, [tenant.schema, target.host, target.port])
  // A move cannot run inside a transaction: its row is written right after it.
  await appendAuditAlone(pool, { action: 'tenant.moved', target: tenant.code, tenant: tenant.code, changes: { from: nodeName(from), to: nodeName(target) } })
  return { from, to: target, ms: Math.round(performance.now() - started) }
}

function notCitus() {
  return new HttpProblem(409, 'NOT_CITUS', 'Tenants move between the workers of a Citus cluster; this database is one PostgreSQL (docs/scale-out.md).')
}
