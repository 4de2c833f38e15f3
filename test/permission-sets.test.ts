// The per-instance cache of each principal's permissions (src/rbac/permission-sets.ts), counted in
// what it sends to the database: a hit costs nothing, a change to the tenant's roles empties it, a
// read that raced such a change is not kept, and refusals re-read at most 50 times a second.
import t from 'tap'
import { countDatabaseWork } from './helpers/count-database-work.ts'
import { startTestHost } from '../src/testing/host.ts'

async function hostWithKey(t: { teardown(fn: () => unknown): void }) {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.host.changes.stop() // its polling is not the cache's work
  const tenant = await th.createTenant('acme')
  const { id } = await th.host.createKey('acme', 'reader', ['admin'])
  return { sets: th.host.permissionSets, tenant, principal: `key:${id}` }
}

t.test('a cached set costs no read; invalidating the tenant empties it', async (t) => {
  const { sets, tenant, principal } = await hostWithKey(t)
  const first = await countDatabaseWork(() => sets.get(tenant, principal))
  t.equal(first.roundTrips, 1, 'the first read goes to the database')
  t.ok((await sets.get(tenant, principal)).has('inventory.items.read'), "the admin role's permissions")
  t.equal((await countDatabaseWork(() => sets.get(tenant, principal))).roundTrips, 0, 'then it is served from memory')
  sets.invalidate(tenant.id)
  t.equal((await countDatabaseWork(() => sets.get(tenant, principal))).roundTrips, 1, 'after a change to the tenant it is read again')
})

t.test('a read that started before the tenant changed is not kept', async (t) => {
  const { sets, tenant, principal } = await hostWithKey(t)
  const racing = sets.get(tenant, principal)
  sets.invalidate(tenant.id) // the change lands while the read is in flight
  await racing
  t.equal((await countDatabaseWork(() => sets.get(tenant, principal))).roundTrips, 1, 'the next request reads again')
  t.equal((await countDatabaseWork(() => sets.get(tenant, principal))).roundTrips, 0, 'and that read is kept')
})

t.test('refused checks re-read at most 50 times a second, then the cached set answers', async (t) => {
  const { sets, tenant, principal } = await hostWithKey(t)
  await sets.get(tenant, principal)
  const flood = await countDatabaseWork(async () => {
    for (let i = 0; i < 60; i++) await sets.recheck(tenant, principal)
  })
  t.equal(flood.roundTrips, 50, '60 refusals in a second: 50 reads')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await countDatabaseWork(() => sets.recheck(tenant, principal))).roundTrips, 1, 'a second later the budget is whole again')
})
