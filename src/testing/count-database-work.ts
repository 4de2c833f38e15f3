// Counts what plinth sends to the database while `work` runs: how tests and the bench check that a
// path costs the round trips it should. It watches the host pool's clients (application_name
// `plinth`), not the change feed's, whose polling runs on a timer of its own.
//
// A statement is a round trip of its own when its client has nothing in flight as it is issued.
// One issued while another is still in flight rides the same round trip (the pool's clients
// pipeline), so a transaction's BEGIN sent just ahead of its first statement counts once.
import pg from 'pg'

export interface DatabaseWork {
  statements: number
  roundTrips: number
}

export async function countDatabaseWork(work: () => Promise<unknown>): Promise<DatabaseWork> {
  const original = pg.Client.prototype.query
  const inFlight = new WeakMap<pg.Client, number>()
  const counted: DatabaseWork = { statements: 0, roundTrips: 0 }
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if ((this as unknown as { connectionParameters?: { application_name?: string } }).connectionParameters?.application_name !== 'plinth') {
      return (original as Function).apply(this, args)
    }
    counted.statements++
    const pending = inFlight.get(this) ?? 0
    if (pending === 0) counted.roundTrips++
    const result = (original as Function).apply(this, args)
    if (result && typeof result.then === 'function') {
      inFlight.set(this, pending + 1)
      const settle = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1)
      result.then(settle, settle)
    }
    return result
  } as typeof original
  try {
    await work()
  } finally {
    pg.Client.prototype.query = original
  }
  return counted
}
