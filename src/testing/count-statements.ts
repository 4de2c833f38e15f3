// Counts the statements plinth sends to the database while `work` runs: how tests and the bench
// check that a path costs the round trips it should. It counts every pg client in the process.
import pg from 'pg'

export async function countStatements(work: () => Promise<unknown>): Promise<number> {
  const original = pg.Client.prototype.query
  let count = 0
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    count++
    return (original as Function).apply(this, args)
  } as typeof original
  try {
    await work()
  } finally {
    pg.Client.prototype.query = original
  }
  return count
}
