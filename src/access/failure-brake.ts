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
  /**
   * Told, once a window ends, how many of its failures were of operator credentials (the admin
   * token, the console's sign-in): the audit trail's one row per address and window.
   */
  onOperatorFailures?: (summary: OperatorFailures) => Promise<void>
}

export interface OperatorFailures {
  address: string
  failures: number
  /** Attempts refused (429) while the address was braked. */
  refused: number
  windowMs: number
}

interface Window {
  /** The address's failures: the brake holds while none is left. */
  failures: Budget
  unlogged: number
  /** Failures of operator credentials in it. */
  operator: number
}

const DEFAULTS: FailureBrakeOptions = { limit: 20, windowMs: 10_000, maxAddresses: 100_000 }

export class FailureBrake {
  private windows = new Map<string, Window>()
  private readonly options: FailureBrakeOptions
  private sweeper: NodeJS.Timeout
  /** Summaries being written: stop() waits for them. */
  private reporting = new Set<Promise<void>>()

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

  /**
   * Counts a failure of the request's address, and logs it unless its window has logged enough.
   * `operator`: the credential was an operator's, and the window's summary goes to the audit trail.
   */
  failed(request: Caller, line: Record<string, unknown>, message: string, { operator = false } = {}) {
    const now = Date.now()
    let window = this.current(request.ip, now)
    if (!window) {
      if (this.windows.size >= this.options.maxAddresses) this.close(this.windows.keys().next().value!, this.windows.values().next().value!)
      this.windows.set(request.ip, (window = { failures: new Budget(this.options.limit || Infinity, this.options.windowMs), unlogged: 0, operator: 0 }))
    }
    window.failures.take(now)
    if (operator) window.operator++
    request.log.warn({ ...line, address: request.ip }, message)
  }

  /** Ends every window, its summaries written. */
  async stop() {
    clearInterval(this.sweeper)
    this.sweep(Infinity)
    await Promise.all(this.reporting)
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
    if (window.operator > 0 && this.options.onOperatorFailures) {
      const summary = { address, failures: window.operator, refused: window.unlogged, windowMs: this.options.windowMs }
      const written = this.options.onOperatorFailures(summary).catch((err) => this.log.error({ err, ...summary }, 'failed operator authentications could not be audited'))
      this.reporting.add(written)
      void written.finally(() => this.reporting.delete(written))
    }
    if (window.unlogged > 0) {
      this.log.warn(
        { address, failures: window.failures.used, notLogged: window.unlogged, windowMs: this.options.windowMs },
        `${window.unlogged} more authentication attempts from this address were refused (429) while it was braked`,
      )
    }
  }
}
