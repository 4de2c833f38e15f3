// What may be spent in a window of time: at most `limit` each `windowMs`, the window starting at
// the first spend after the last one ended. The one budget behind every "at most N a second" in
// plinth (miss lookups, permission rechecks, the failure brake's count per address).
export class Budget {
  private startedAt = -Infinity
  private spent = 0

  constructor(
    readonly limit: number,
    readonly windowMs = 1000,
  ) {}

  /** Spends one, if the window has one left. */
  take(now = Date.now()): boolean {
    if (this.over(now)) {
      this.startedAt = now
      this.spent = 0
    }
    if (this.spent >= this.limit) return false
    this.spent++
    return true
  }

  /** Whether nothing is left in the current window. */
  exhausted(now = Date.now()): boolean {
    return !this.over(now) && this.spent >= this.limit
  }

  /** The current window has ended (or none began): the next take starts a new one. */
  over(now = Date.now()): boolean {
    return now - this.startedAt >= this.windowMs
  }

  /** How much of the current window was spent. */
  get used(): number {
    return this.spent
  }

  /** When the current window ends. */
  get endsAt(): number {
    return this.startedAt + this.windowMs
  }
}
