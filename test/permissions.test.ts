// Grants and what they give (src/rbac/permissions.ts): the cases an operator writes, and the near
// misses that must give nothing. Through HTTP, test/identity.test.ts ("pattern grants").
import t from 'tap'
import { effectivePermissions, isGrant, unknownGrants } from '../src/access/permissions.ts'

const catalog = ['shop.order.read', 'shop.order.readall', 'shop.orders.read', 'shop.order.write', 'shopping.cart.read']

t.test('an exact grant gives that permission only, not one it is the start of', async (t) => {
  t.same([...effectivePermissions(['shop.order.read'], catalog)], ['shop.order.read'])
})

t.test('patterns give what they name and no neighbour', async (t) => {
  t.same([...effectivePermissions(['shop.order.*'], catalog)], ['shop.order.read', 'shop.order.readall', 'shop.order.write'])
  t.same([...effectivePermissions(['shop.*'], catalog)], ['shop.order.read', 'shop.order.readall', 'shop.orders.read', 'shop.order.write'], 'not shopping.*')
  t.same([...effectivePermissions(['*'], catalog)], catalog)
  t.same(unknownGrants(['shop.order.*', 'shop.invoice.*', 'nothing.*'], catalog), ['shop.invoice.*', 'nothing.*'])
})

t.test('what is a grant: the whole text must be one', async (t) => {
  for (const grant of ['*', 'shop.*', 'shop.order.*', 'shop.order.read', 'my-mod.my_res.do_it']) t.ok(isGrant(grant), grant)
  for (const text of ['', 'shop', 'shop.order', 'x shop.*', 'shop.* x', 'shop.order.read.more', 'Shop.order.read', '**', 'shop.*.read', 42]) {
    t.notOk(isGrant(text), JSON.stringify(text))
  }
})
