// The inventory module's own suite, through the module harness: real HTTP (inject), a real
// database, principals holding exactly the permissions each test names.
import t from 'tap'
import { expectStatus, startModuleHost } from 'plinth/testing'

const h = await startModuleHost(t, { tenants: ['acme', 'beta'] })
const all = ['inventory.items.read', 'inventory.items.create', 'inventory.items.update', 'inventory.items.delete']
const acme = await h.client({ tenant: 'acme', permissions: all })
const beta = await h.client({ tenant: 'beta', permissions: all })

// What the API answers for a timestamp, on every route: ISO 8601 in UTC.
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

t.test('create, get, update, delete', async (t) => {
  const created = await acme.post('/items', { name: 'Widget', sku: 'W-1', quantity: 3 })
  expectStatus(t, created, 201)
  const item = created.json()
  t.match(item, { id: String, name: 'Widget', sku: 'W-1', quantity: 3, createdAt: ISO_TIME, updatedAt: ISO_TIME })

  t.same((await acme.get(`/items/${item.id}`)).json(), item)
  const updated = await acme.patch(`/items/${item.id}`, { quantity: 5 }, { headers: { 'x-request-id': 'restock-1' } })
  expectStatus(t, updated, 200)
  t.equal(updated.headers['x-request-id'], 'restock-1', 'a header for this request alone')
  t.equal(updated.json().quantity, 5)

  const deleted = await acme.delete(`/items/${item.id}`)
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.body, '')
  const gone = await acme.get(`/items/${item.id}`)
  t.equal(gone.statusCode, 404)
  t.match(gone.json(), { error: 'NOT_FOUND', detail: 'No item has this id.' })
})

t.test('list: pagination and a name filter', async (t) => {
  for (const name of ['Bolt', 'Nut', 'Washer', 'Bolt 50%', 'Screw']) await acme.post('/items', { name })
  const page = await acme.get('/items?limit=2&offset=1')
  t.match(page.json(), { total: 5, limit: 2, offset: 1 })
  t.same(page.json().items.map((i: any) => i.name), ['Bolt 50%', 'Nut'])
  t.match(page.json().items[0], { id: String, sku: null, quantity: 0, createdAt: ISO_TIME, updatedAt: ISO_TIME })
  t.same(Object.keys(page.json().items[0]).sort(), ['createdAt', 'id', 'name', 'quantity', 'sku', 'updatedAt'])
  const filtered = await acme.get('/items?name=bolt')
  t.same(filtered.json().items.map((i: any) => i.name), ['Bolt', 'Bolt 50%'])
  const past = await acme.get('/items?limit=2&offset=10')
  t.match(past.json(), { items: [], total: 5 }, 'a page past the end still says how many there are')
  const literal = await acme.get('/items?name=' + encodeURIComponent('50%'))
  t.same(literal.json().items.map((i: any) => i.name), ['Bolt 50%'], '% in a filter is literal')
})

t.test('input is validated in the one error shape', async (t) => {
  const res = await acme.post('/items', { name: '', quantity: -1, color: 'red' })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { error: 'VALIDATION_FAILED', errors: [{ path: '/body/name' }, { path: '/body/quantity' }] })
  const badId = await acme.get('/items/not-a-uuid')
  t.equal(badId.statusCode, 400)
  const tooMany = await acme.get('/items?limit=1000')
  t.equal(tooMany.json().error, 'VALIDATION_FAILED')
  const duplicate = await acme.post('/items', { name: 'A', sku: 'DUP' })
  t.equal(duplicate.statusCode, 201)
  const again = await acme.post('/items', { name: 'B', sku: 'DUP' })
  t.equal(again.statusCode, 409)
  t.equal(again.json().error, 'CONFLICT')
})

t.test('each tenant sees only its own items', async (t) => {
  await beta.post('/items', { name: 'Beta only' })
  const mine = (await beta.get('/items?limit=100')).json().items.map((i: any) => i.name)
  t.same(mine, ['Beta only'])
  const theirs = (await acme.get('/items?limit=100')).json().items.map((i: any) => i.name)
  t.notOk(theirs.includes('Beta only'))
})

t.test('deny by default: no credential 401, a missing permission 403, before any write', async (t) => {
  const anonymous = await h.client({ tenant: 'acme' })
  t.equal((await anonymous.get('/items')).statusCode, 401)
  const reader = await h.client({ tenant: 'acme', permissions: ['inventory.items.read'] })
  t.equal((await reader.get('/items')).statusCode, 200)
  const refused = await reader.post('/items', { name: 'Not allowed' })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().error, 'FORBIDDEN')
  const names = (await acme.get('/items?limit=100&name=allowed')).json().items
  t.same(names, [], 'nothing was written')
})

t.test('health is open', async (t) => {
  const res = await h.app.inject({ url: '/api/plugins/inventory/health' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
})
