// The per-tenant bound on pooled clients, as its accounting: a share is given back exactly once,
// a waiter that gave up never takes a place, and one tenant's count never leaks into another's.
// (tenant-scope.test.ts checks the same bound end to end on PostgreSQL.)
import t from 'tap'
import { FairShare } from '../src/tenancy/fair-share.ts'

const admitted = async (entry: Promise<void> | undefined, withinMs = 30) => {
  if (entry === undefined) return true
  return Promise.race([entry.then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), withinMs))])
}

t.test('a waiter that timed out gives up its place: the share is whole again once the holder leaves', async (t) => {
  const share = new FairShare(1, 50)
  t.ok(await admitted(share.enter('a')), 'the first is admitted at once')
  await t.rejects(share.enter('a')!, { status: 503, code: 'DB_UNAVAILABLE' }, 'the second waits, then gets 503')
  share.leave('a')
  t.ok(await admitted(share.enter('a')), 'the next one is admitted at once: the timed-out waiter took nothing')
  t.equal(share.holding('a'), 1)
})

t.test('leaving hands the place to the next waiter, and counts every holder', async (t) => {
  const share = new FairShare(2, 1000)
  share.enter('a')
  share.enter('a')
  const third = share.enter('a')
  t.notOk(await admitted(third), 'past the share: waits')
  share.leave('a')
  t.ok(await admitted(third), 'a holder left: the waiter takes its place')
  t.equal(share.holding('a'), 2)
  share.leave('a')
  t.equal(share.holding('a'), 1, 'one left, one still holds')
  t.ok(await admitted(share.enter('a')))
  t.notOk(await admitted(share.enter('a')), 'two hold again: the next waits')
  t.equal(share.holding('b'), 0)
  t.ok(await admitted(share.enter('b')), 'another tenant is not held back')
  share.leave('a')
  share.leave('a')
  share.leave('b')
})
