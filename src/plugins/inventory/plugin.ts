// Inventory: items with a paginated, filterable list, and get / create / update / delete.
// Written against the module contract only (host API 1.x); plinth runs it unchanged.
import { eq, sql } from 'drizzle-orm'
import { defineModule } from 'plinth/module'
import { Type } from 'typebox'
import { Item, itemColumns, items, toItem } from './schema.ts'

export const permissions = ['inventory.items.read', 'inventory.items.create', 'inventory.items.update', 'inventory.items.delete']

const ItemInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    sku: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    quantity: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
const ItemPatch = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    sku: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()])),
    quantity: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, minProperties: 1 },
)
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
})

function notFound() {
  // Express style: an error with a status is answered with that status.
  return Object.assign(new Error('No item has this id.'), { status: 404 })
}

// `%` and `_` in a user's filter are literal characters, not wildcards.
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => '\\' + c)}%`

// The list and create routes are the module's hot paths: they use Drizzle's sql templates over
// itemColumns and toItem (schema.ts) rather than the query builder.

export default defineModule({
  meta: { id: 'inventory', name: 'Inventory', version: '1.0.0', api: '1.x' },
  async register(ctx) {
    ctx.router.get(
      '/items',
      { schema: { querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Item), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) } }, summary: 'List items' },
      ctx.rbac.require('inventory.items.read'),
      async (req) => {
        const { limit, offset, name } = req.query
        const where = name ? sql`WHERE ${items.name} ILIKE ${likePattern(name)}` : sql``
        // The page and the total in one statement; a page past the end needs the count alone.
        const { rows } = await req.db.execute(sql`SELECT ${itemColumns}, count(*) OVER ()::int AS total FROM ${items} ${where}
          ORDER BY ${items.name}, ${items.id} LIMIT ${limit} OFFSET ${offset}`)
        let total = rows[0]?.total ?? 0
        if (rows.length === 0 && offset > 0) ({ rows: [{ total }] } = await req.db.execute(sql`SELECT count(*)::int AS total FROM ${items} ${where}`))
        return { items: rows.map(toItem), total, limit, offset }
      },
    )

    ctx.router.get(
      '/items/:id',
      { schema: { params: IdParams, response: { 200: Item } }, summary: 'Get an item' },
      ctx.rbac.require('inventory.items.read'),
      async (req) => {
        const [item] = await req.db.select().from(items).where(eq(items.id, req.params.id))
        if (!item) throw notFound()
        return item
      },
    )

    ctx.router.post(
      '/items',
      { schema: { body: ItemInput, response: { 201: Item } }, summary: 'Create an item' },
      ctx.rbac.require('inventory.items.create'),
      async (req, res) => {
        const { name, sku = null, quantity = 0 } = req.body
        const {
          rows: [item],
        } = await req.db.execute(sql`INSERT INTO ${items} (name, sku, quantity) VALUES (${name}, ${sku}, ${quantity}) RETURNING ${itemColumns}`)
        ctx.log('item created', { itemId: item.id })
        res.status(201).json(toItem(item))
      },
    )

    ctx.router.patch(
      '/items/:id',
      { schema: { params: IdParams, body: ItemPatch, response: { 200: Item } }, summary: 'Update an item' },
      ctx.rbac.require('inventory.items.update'),
      async (req) => {
        const [item] = await req.db
          .update(items)
          .set({ ...req.body, updatedAt: sql`now()` })
          .where(eq(items.id, req.params.id))
          .returning()
        if (!item) throw notFound()
        return item
      },
    )

    ctx.router.delete(
      '/items/:id',
      { schema: { params: IdParams, response: { 204: Type.Null({ description: 'Deleted' }) } }, summary: 'Delete an item' },
      ctx.rbac.require('inventory.items.delete'),
      async (req, res) => {
        const deleted = await req.db.delete(items).where(eq(items.id, req.params.id)).returning({ id: items.id })
        if (deleted.length === 0) throw notFound()
        res.status(204).end()
      },
    )
  },
})
