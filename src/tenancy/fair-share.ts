// How tenant transactions share the pool's clients: a lone tenant may use all of them, and no
// tenant starves another. The rules, with `capacity` the pool (DB_POOL_MAX), `perTenant` each
// tenant's share (DB_TENANT_POOL_MAX) and `reserve` (DB_POOL_RESERVE):
//
// - Any tenant takes a free client of the pool, beyond its share too (it *borrows*), so one busy
//   tenant alone gets every client.
// - A tenant within its share that finds the pool held takes one of `reserve` further clients,
//   as many as the others have borrowed: what a borrower holds never keeps another tenant
//   waiting for its share. So the server sees at most capacity + reserve tenant connections.
// - A client given back goes first to a waiting tenant within its share, oldest first; then to
//   the oldest waiter of all. A waiter waits at most `waitMs`, then gets a 503.
//
// Why not a hard cap of one's share: a deployment with one large tenant, or a benchmark on day
// one, would use half the pool (docs/security.md, "Sharing the pool"). Why not borrowing alone:
// a borrower's clients held for seconds would then keep every other tenant waiting as long.
import { problems } from '../problems.ts'

export interface FairShareOptions {
  /** Clients any tenant may take: the pool. */
  capacity: number
  /** What each tenant can always get: it waits behind borrowers for no more than this many. */
  perTenant: number
  /** Clients past the pool, for tenants within their share while others borrow. */
  reserve: number
  /** How long a transaction waits for a client before 503 DB_UNAVAILABLE. */
  waitMs: number
}

interface Waiter {
  tenantId: string
  resolve: () => void
  timer: NodeJS.Timeout
}

export class FairShare {
  readonly capacity: number
  readonly perTenant: number
  readonly reserve: number
  private readonly waitMs: number
  private readonly held = new Map<string, number>()
  /** Clients held, over all tenants. */
  private total = 0
  /** Clients held beyond their tenant's share, over all tenants. */
  private borrowed = 0
  /** In arrival order. */
  private readonly waiters: Waiter[] = []

  constructor({ capacity, perTenant, reserve, waitMs }: FairShareOptions) {
    this.capacity = capacity
    this.perTenant = Math.min(perTenant, capacity)
    this.reserve = reserve
    this.waitMs = waitMs
  }

  /** The clients tenant work may have open at once: what the pool under it must allow. */
  get connections() {
    return this.capacity + this.reserve
  }

  /**
   * Undefined when the tenant may take a client now (counted as held); else a promise that
   * resolves once it may, or rejects with a 503 after waitMs.
   */
  enter(tenantId: string): Promise<void> | undefined {
    const held = this.holding(tenantId)
    // No waiter is passed over: a waiter is admitted the moment a client it may take is free.
    if (this.mayTake(held)) {
      this.take(tenantId, held)
      return undefined
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        tenantId,
        resolve,
        timer: setTimeout(() => {
          const at = this.waiters.indexOf(waiter)
          // Stryker disable next-line ConditionalExpression,UnaryOperator: equivalent; a granted waiter's timer is cleared, so a waiter whose timer fires is still queued
          if (at !== -1) this.waiters.splice(at, 1)
          reject(problems.dbUnavailable(new Error(`no database client for tenant ${tenantId} within ${this.waitMs} ms (it holds ${this.holding(tenantId)})`)))
        }, this.waitMs),
      }
      this.waiters.push(waiter)
    })
  }

  /** A client of the tenant's went back: waiters take what is free now, those within their share first. */
  leave(tenantId: string) {
    const held = this.holding(tenantId)
    // Stryker disable next-line ConditionalExpression: a leave without an enter is a caller's bug; this keeps the counts from going negative
    if (held === 0) return
    if (held === 1) this.held.delete(tenantId)
    else this.held.set(tenantId, held - 1)
    this.total--
    if (held > this.perTenant) this.borrowed--
    this.admitWaiters()
  }

  /** How many clients the tenant holds now. */
  holding(tenantId: string) {
    return this.held.get(tenantId) ?? 0
  }

  /** Clients held beyond their tenants' shares now. */
  get borrowing() {
    return this.borrowed
  }

  /** Whether a tenant holding `held` may take a client now. */
  private mayTake(held: number) {
    if (this.total < this.capacity) return true
    return held < this.perTenant && this.total < this.capacity + Math.min(this.reserve, this.borrowed)
  }

  private take(tenantId: string, held: number) {
    this.held.set(tenantId, held + 1)
    this.total++
    if (held >= this.perTenant) this.borrowed++
  }

  private admitWaiters() {
    while (this.waiters.length > 0) {
      const at = this.nextWaiter()
      if (at === -1) return
      const [waiter] = this.waiters.splice(at, 1)
      clearTimeout(waiter!.timer)
      this.take(waiter!.tenantId, this.holding(waiter!.tenantId))
      waiter!.resolve()
    }
  }

  /** The oldest waiter within its share that may take a client; else the oldest that may; -1 for none. */
  private nextWaiter(): number {
    let beyondShare = -1
    for (let i = 0; i < this.waiters.length; i++) {
      const held = this.holding(this.waiters[i]!.tenantId)
      if (!this.mayTake(held)) continue
      if (held < this.perTenant) return i
      if (beyondShare === -1) beyondShare = i
    }
    return beyondShare
  }
}
