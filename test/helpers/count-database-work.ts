// Counts what plinth sends to the database while `work` runs: how tests and the bench check that a
// path costs the round trips it should. It watches the host pool's clients (application_name
// `plinth`), not the change feed's, whose polling runs on a timer of its own.
//
// A statement is a round trip of its own when its client has nothing in flight as it is issued.
// One issued while another is still in flight rides the same round trip (the pool's clients
// pipeline), so a transaction's BEGIN sent just ahead of its first statement counts once.
//
// A write is one write to a client's socket (one system call): statements sent together in one
// run of the event loop can share one (transaction.ts corks BEGIN until the handler's first
// statement joins it).
import net from 'node:net'
import pg from 'pg'
import { clientSocket } from '../../src/tenancy/transaction.ts'

export interface DatabaseWork {
  statements: number
  roundTrips: number
  writes: number
}

type SocketWrite = (this: net.Socket, ...args: unknown[]) => unknown

export async function countDatabaseWork(work: () => Promise<unknown>): Promise<DatabaseWork> {
  const original = pg.Client.prototype.query
  const inFlight = new WeakMap<pg.Client, number>()
  const counted: DatabaseWork = { statements: 0, roundTrips: 0, writes: 0 }
  const watched = new WeakSet<object>()
  const socketPrototype = net.Socket.prototype as unknown as Record<'_write' | '_writev', SocketWrite>
  const originalWrites = { _write: socketPrototype._write, _writev: socketPrototype._writev }
  for (const name of ['_write', '_writev'] as const) {
    socketPrototype[name] = function (this: net.Socket, ...args: unknown[]) {
      if (watched.has(this)) counted.writes++
      return originalWrites[name].apply(this, args)
    }
  }
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if ((this as unknown as { connectionParameters?: { application_name?: string } }).connectionParameters?.application_name !== 'plinth') {
      return (original as Function).apply(this, args)
    }
    const socket = clientSocket(this)
    if (socket) watched.add(socket)
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
    Object.assign(socketPrototype, originalWrites)
  }
  return counted
}
