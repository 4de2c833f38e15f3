// The bench's seed-style module: inventory's list route, the same statement and the same response
// schema, but written as the seed's modules are, with its database work in
// ctx.withTenantTx(req.tenant.id, db => ...) instead of req.db. `npm run bench` compares the two in
// one run: what joining the request's transaction under a SAVEPOINT costs.
import { sql } from 'drizzle-orm'
import { Type } from 'typebox'
import { Item, itemColumns, items, toItem } from '../../../src/plugins/inventory/schema.ts'

export const permissions = ['seedstyle.items.read']

const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
})

export default {
  meta: { id: 'seedstyle', name: 'Seed-style inventory (bench)', version: '1.0.0', api: '1.x' },
  async register(ctx: any) {
    ctx.router.get(
      '/items',
      { schema: { querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Item), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) } } },
      ctx.rbac.require('seedstyle.items.read'),
      async (req: any, res: any) => {
        const { limit, offset } = req.query
        const rows = await ctx.withTenantTx(req.tenant.id, async (db: any) => {
          const result = await db.execute(sql`SELECT ${itemColumns}, count(*) OVER ()::int AS total FROM ${items}
            ORDER BY ${items.name}, ${items.id} LIMIT ${limit} OFFSET ${offset}`)
          return result.rows
        })
        res.json({ items: rows.map(toItem), total: rows[0]?.total ?? 0, limit, offset })
      },
    )
  },
}
