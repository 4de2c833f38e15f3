// What a request names that a cache does not hold (a key, a tenant created a moment ago on another
// instance or by the CLI) is looked up before the request is refused, so new things work on the very
// next request. A flood of made-up names must not become a flood of queries, so:
// - a name found missing is remembered as missing for a short while (bounded in memory);
// - lookups of one name at once share one query;
// - at most `perSecond` lookups run a second; past that a miss is answered without one.
export interface MissLookupOptions {
  perSecond: number
  missTtlMs: number
  maxMisses: number
}

const DEFAULTS: MissLookupOptions = { perSecond: 50, missTtlMs: 2000, maxMisses: 10_000 }

export class MissLookups<T> {
  private misses = new Map<string, number>()
  private inFlight = new Map<string, Promise<T | undefined>>()
  private windowStart = 0
  private spent = 0
  private readonly options: MissLookupOptions

  constructor(
    private readonly lookup: (name: string) => Promise<T | undefined>,
    options: Partial<MissLookupOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options }
  }

  async find(name: string): Promise<T | undefined> {
    const now = Date.now()
    const missedUntil = this.misses.get(name)
    if (missedUntil !== undefined) {
      if (missedUntil > now) return undefined
      this.misses.delete(name)
    }
    const pending = this.inFlight.get(name)
    if (pending) return pending
    if (now - this.windowStart >= 1000) {
      this.windowStart = now
      this.spent = 0
    }
    if (this.spent >= this.options.perSecond) return undefined
    this.spent++
    const lookup = this.lookup(name).then((found) => {
      if (found === undefined) this.remember(name)
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

  private remember(name: string) {
    // Oldest first: a Map keeps insertion order.
    if (this.misses.size >= this.options.maxMisses) this.misses.delete(this.misses.keys().next().value!)
    this.misses.set(name, Date.now() + this.options.missTtlMs)
  }
}
