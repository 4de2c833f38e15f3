// A brake on guessing credentials. Failed authentications are counted per client address in
// fixed windows; an address past the limit is answered 429 with Retry-After, without any check of
// what it sent, until its window ends. Log lines stay bounded: each failure up to the limit is
// logged; attempts refused while braked are counted and written as one line when the window ends,
// so a flood cannot fill the disk.
//
// Not @fastify/rate-limit: that counts every request of an address, and what is braked here is
// failures only; a client that authenticates is never slowed.
import type { Logger } from 'pino'
import { HttpProblem } from '../problems.ts'
import { Budget } from '../platform/budget.ts'
import type { Caller } from './principal.ts'

export interface FailureBrakeOptions {
  /**
   * Failures an address may make in one window before it is braked (PLINTH_AUTH_FAILURE_LIMIT).
   * 0 turns the brake off, for a deployment whose gateway already limits failed logins: every
   * failure is still logged, none is counted.
   */
  limit: number
  windowMs: number
  /** Addresses tracked at once (the oldest window is dropped first). */
  maxAddresses: number
}

interface Window {
  /** The address's failures: the brake holds while none is left. */
  failures: Budget
  unlogged: number
}

const DEFAULTS: FailureBrakeOptions = { limit: 20, windowMs: 10_000, maxAddresses: 100_000 }

export class FailureBrake {
  private windows = new Map<string, Window>()
  private readonly options: FailureBrakeOptions
  private sweeper: NodeJS.Timeout

  constructor(
    private readonly log: Logger,
    options: Partial<FailureBrakeOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options }
    this.sweeper = setInterval(() => this.sweep(), this.options.windowMs)
    this.sweeper.unref()
  }

  /** Throws 429 while the request's address is braked. */
  check(request: Caller) {
    if (this.options.limit === 0) return
    const now = Date.now()
    const window = this.current(request.ip, now)
    if (window?.failures.exhausted(now)) {
      window.unlogged++
      const retryAfter = Math.max(1, Math.ceil((window.failures.endsAt - now) / 1000))
      throw new HttpProblem(429, 'TOO_MANY_FAILED_ATTEMPTS', 'Too many failed authentications from this address; retry later.', {
        headers: { 'retry-after': String(retryAfter) },
      })
    }
  }

  /** Counts a failure of the request's address, and logs it unless its window has logged enough. */
  failed(request: Caller, line: Record<string, unknown>, message: string) {
    if (this.options.limit === 0) return request.log.warn({ ...line, address: request.ip }, message)
    const now = Date.now()
    let window = this.current(request.ip, now)
    if (!window) {
      if (this.windows.size >= this.options.maxAddresses) this.windows.delete(this.windows.keys().next().value!)
      this.windows.set(request.ip, (window = { failures: new Budget(this.options.limit, this.options.windowMs), unlogged: 0 }))
    }
    window.failures.take(now)
    request.log.warn({ ...line, address: request.ip }, message)
  }

  stop() {
    clearInterval(this.sweeper)
    this.sweep(Infinity)
  }

  private current(address: string, now: number): Window | undefined {
    const window = this.windows.get(address)
    if (!window) return undefined
    if (!window.failures.over(now)) return window
    this.close(address, window)
    return undefined
  }

  /** Ends windows that are over, writing their summary lines. */
  private sweep(now = Date.now()) {
    for (const [address, window] of this.windows) if (window.failures.over(now)) this.close(address, window)
  }

  private close(address: string, window: Window) {
    this.windows.delete(address)
    if (window.unlogged > 0) {
      this.log.warn(
        { address, failures: window.failures.used, notLogged: window.unlogged, windowMs: this.options.windowMs },
        `${window.unlogged} more authentication attempts from this address were refused (429) while it was braked`,
      )
    }
  }
}
