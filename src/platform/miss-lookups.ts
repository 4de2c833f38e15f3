// What a request names that a cache does not hold (a key, a tenant created a moment ago on another
// instance or by the CLI) is looked up before the request is refused, so new things work on the very
// next request. A flood of made-up names must not become a flood of queries, so:
// - a name found missing is remembered as missing for a short while (an LRU with a TTL, bounded);
// - lookups of one name at once share one query;
// - at most `perSecond` lookups run a second; past that a miss is answered without one.
// None of it is on the path of a request whose name the cache holds.
import { LRUCache } from 'lru-cache'
import { Budget } from './budget.ts'

export interface MissLookupOptions {
  perSecond: number
  missTtlMs: number
  maxMisses: number
}

const DEFAULTS: MissLookupOptions = { perSecond: 50, missTtlMs: 2000, maxMisses: 10_000 }

export class MissLookups<T> {
  private readonly misses: LRUCache<string, true>
  private readonly inFlight = new Map<string, Promise<T | undefined>>()
  private readonly budget: Budget

  constructor(
    private readonly lookup: (name: string) => Promise<T | undefined>,
    options: Partial<MissLookupOptions> = {},
  ) {
    const { perSecond, missTtlMs, maxMisses } = { ...DEFAULTS, ...options }
    this.misses = new LRUCache({ max: maxMisses, ttl: missTtlMs })
    this.budget = new Budget(perSecond)
  }

  async find(name: string): Promise<T | undefined> {
    if (this.misses.has(name)) return undefined
    const pending = this.inFlight.get(name)
    if (pending) return pending
    if (!this.budget.take()) return undefined
    const lookup = this.lookup(name).then((found) => {
      if (found === undefined) this.misses.set(name, true)
      return found
    })
    this.inFlight.set(name, lookup)
    try {
      return await lookup
    } finally {
      this.inFlight.delete(name)
    }
  }

  /** Forgets that `name` was missing: it was just created here. */
  forget(name: string) {
    this.misses.delete(name)
  }
}
