// Checked by `npm run typecheck`, never run: what `plinth/module`'s types promise an author.
// Each @ts-expect-error is a mistake the types must catch; tsc fails if one stops being an error.
import { defineModule } from 'plinth/module'
import { Type } from 'typebox'

const Params = Type.Object({ id: Type.String() })
const Body = Type.Object({ name: Type.String(), seats: Type.Integer() })
const Query = Type.Object({ limit: Type.Integer() })

export default defineModule({
  meta: { id: 'types', name: 'Types', version: '1.0.0', api: '1.x' },
  register(ctx) {
    ctx.router.post('/rooms/:id', { schema: { params: Params, body: Body, querystring: Query } }, ctx.rbac.require('types.rooms.write'), async (req, res) => {
      const id: string = req.params.id
      const seats: number = req.body.seats
      const limit: number = req.query.limit
      // @ts-expect-error: the body schema has no `floor`
      req.body.floor
      // @ts-expect-error: seats is a number
      const wrong: string = req.body.seats
      // A module route always has its tenant.
      const schema: string = req.tenant.schema
      await ctx.withTenantTx(req.tenant.id, async (db) => db.execute('SELECT 1'))
      res.status(201).json({ id, seats, limit, schema, wrong })
    })
    ctx.router.get('/rooms', async (req, res) => {
      // Without a schema: Express's types, strings by name.
      const id: string | undefined = req.params.id
      // @ts-expect-error: an unvalidated body is unknown until checked
      req.body.name
      res.json({ id })
    })
    ctx.router.route('/desks').get({ schema: { params: Params } }, async (req) => req.params.id)
    // Arrays of functions, as Express takes them; the schema still types req inside them.
    const audit = (_req: unknown, _res: unknown, next: () => void) => next()
    ctx.router.get('/rooms/:id/seats', { schema: { params: Params } }, [audit, [ctx.rbac.require('types.rooms.read')]], async (req) => req.params.id)
    ctx.router.use('/rooms', [audit])
    // @ts-expect-error: an array holds functions only
    ctx.router.get('/x', ['/y'], () => {})
    ctx.router.use((err: unknown, _req, res, _next) => res.status(500).json({ err: String(err) }))
    // @ts-expect-error: the router has no such member (plinth refuses it at register, too)
    ctx.router.propfind('/x', () => {})
  },
})
