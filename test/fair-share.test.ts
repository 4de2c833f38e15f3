// How tenant transactions share the pool, as its accounting: a lone tenant takes the whole pool,
// a tenant within its share is never kept waiting by another's borrowing, a client given back goes
// to those within their share first, a waiter that gave up takes nothing, and every count comes
// back to zero. (tenant-scope.test.ts checks the same rules end to end on PostgreSQL.)
import t from 'tap'
import { FairShare } from '../src/tenancy/fair-share.ts'

const admitted = async (entry: Promise<void> | undefined, withinMs = 30) => {
  if (entry === undefined) return true
  return Promise.race([entry.then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), withinMs))])
}

t.test('a waiter that timed out gives up its place: the pool is whole again once the holder leaves', async (t) => {
  const share = new FairShare({ capacity: 1, perTenant: 1, reserve: 0, waitMs: 50 })
  t.ok(await admitted(share.enter('a')), 'the first is admitted at once')
  await t.rejects(share.enter('a')!, { status: 503, code: 'DB_UNAVAILABLE' }, 'the second waits, then gets 503')
  share.leave('a')
  t.ok(await admitted(share.enter('a')), 'the next one is admitted at once: the timed-out waiter took nothing')
  t.equal(share.holding('a'), 1)
})

t.test('a lone tenant takes every client of the pool; the reserve is not for it', async (t) => {
  const share = new FairShare({ capacity: 4, perTenant: 2, reserve: 1, waitMs: 1000 })
  t.equal(share.connections, 5, 'the pool under it must allow the pool and the reserve')
  for (let i = 0; i < 4; i++) t.ok(await admitted(share.enter('a')), `client ${i + 1} of 4, its share being 2`)
  t.equal(share.borrowing, 2)
  const fifth = share.enter('a')
  t.notOk(await admitted(fifth), 'past the pool it waits: the reserve is for tenants within their share')
  share.leave('a')
  t.ok(await admitted(fifth), 'a client back: its own waiter takes it')
  for (let i = 0; i < 4; i++) share.leave('a')
  t.equal(share.holding('a'), 0)
  t.equal(share.borrowing, 0)
})

t.test("a tenant within its share takes the reserve while another borrows, and is served before the borrower's waiters", async (t) => {
  const share = new FairShare({ capacity: 4, perTenant: 2, reserve: 1, waitMs: 1000 })
  for (let i = 0; i < 4; i++) share.enter('a')
  const aWaits = share.enter('a')
  t.ok(await admitted(share.enter('b')), 'the pool is held by a borrower: b takes the reserve at once')
  const bWaits = share.enter('b')
  t.notOk(await admitted(bWaits), 'the reserve is one client: b waits for its second')
  share.leave('a')
  t.ok(await admitted(bWaits), "a's client goes to b, within its share, though a's waiter came first")
  t.notOk(await admitted(aWaits), 'a waits on')
  t.same([share.holding('a'), share.holding('b'), share.borrowing], [3, 2, 1])
  share.leave('b')
  t.notOk(await admitted(aWaits), "b's client was a reserve one: the reserve only ever makes up for what others borrow, and a is the borrower")
  share.leave('b')
  t.ok(await admitted(aWaits), 'the pool has a client free: the borrower may take it')
  for (let i = 0; i < 4; i++) share.leave('a')
  t.same([share.holding('a'), share.holding('b'), share.borrowing], [0, 0, 0])
})

t.test('with the pool held by tenants within their shares, the oldest waiter goes first, whoever it is', async (t) => {
  const share = new FairShare({ capacity: 2, perTenant: 1, reserve: 1, waitMs: 1000 })
  share.enter('a')
  share.enter('b')
  const order: string[] = []
  const waits = ['c', 'd', 'c'].map((tenant) => share.enter(tenant)!.then(() => order.push(tenant)))
  t.equal(share.borrowing, 0, 'nobody borrows: the reserve stays shut')
  share.leave('a')
  share.leave('b')
  await Promise.all(waits.slice(0, 2))
  t.same(order, ['c', 'd'], 'in arrival order')
  share.leave('c')
  await waits[2]
  t.same(order, ['c', 'd', 'c'])
})

t.test('a client given back goes to the waiter, not to the tenant that gave it back', async (t) => {
  const share = new FairShare({ capacity: 2, perTenant: 1, reserve: 0, waitMs: 1000 })
  share.enter('a')
  share.enter('a')
  const b = share.enter('b')
  t.notOk(await admitted(b), 'the pool is held and no reserve: b waits')
  share.leave('a')
  const again = share.enter('a')
  t.ok(await admitted(b), 'b took the client given back')
  t.notOk(await admitted(again), 'a, asking again at once, waits')
  share.leave('b')
  t.ok(await admitted(again), 'a client free again: a takes it')
  share.leave('a')
  share.leave('a')
  t.same([share.holding('a'), share.holding('b'), share.borrowing], [0, 0, 0])
})
