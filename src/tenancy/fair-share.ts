// No tenant starves another: each tenant may hold at most `perTenant` of the pool's clients at
// once. Its further transactions wait for one of its own to finish (bounded by the same wait as
// the pool's, then 503), while other tenants take the rest of the pool.
import { problems } from '../problems.ts'

interface Waiter {
  resolve: () => void
  timer: NodeJS.Timeout
}

export class FairShare {
  private held = new Map<string, number>()
  private waiting = new Map<string, Waiter[]>()

  constructor(
    readonly perTenant: number,
    private readonly waitMs: number,
  ) {}

  /** Resolves once the tenant may take a client; rejects with a 503 after waiting too long. */
  enter(tenantId: string): Promise<void> | undefined {
    const held = this.held.get(tenantId) ?? 0
    if (held < this.perTenant) {
      this.held.set(tenantId, held + 1)
      return undefined
    }
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(tenantId) ?? []
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const at = queue.indexOf(waiter)
          // Stryker disable next-line ConditionalExpression,UnaryOperator: equivalent; a granted waiter's timer is cleared, so a waiter whose timer fires is still queued (and first: all wait the same time)
          if (at !== -1) queue.splice(at, 1)
          reject(problems.dbUnavailable(new Error(`tenant ${tenantId} already holds its share of ${this.perTenant} database clients`)))
        }, this.waitMs),
      }
      queue.push(waiter)
      this.waiting.set(tenantId, queue)
    })
  }

  /** A client of the tenant's went back: the next of its waiters takes its place. */
  leave(tenantId: string) {
    const next = this.waiting.get(tenantId)?.shift()
    if (next) {
      clearTimeout(next.timer)
      next.resolve()
      return
    }
    const held = (this.held.get(tenantId) ?? 1) - 1
    // Stryker disable next-line EqualityOperator: `< 0` keeps an entry of 0 that holding() reads as 0 anyway
    if (held <= 0) {
      this.held.delete(tenantId)
      this.waiting.delete(tenantId)
    } else this.held.set(tenantId, held)
  }

  /** How many clients the tenant holds now. */
  holding(tenantId: string) {
    return this.held.get(tenantId) ?? 0
  }
}
