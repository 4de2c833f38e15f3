// Concurrent refreshes of one cached key (a local change and the change feed's copy of it) may
// finish out of order; the read that started last must win.
export class RefreshOrder {
  private started = 0
  private applied = new Map<string, number>()

  /** Call before reading; pass the ticket to isCurrent once the read is back. */
  begin(): number {
    return ++this.started
  }

  /** True when no read that started later has been applied for this key. */
  isCurrent(key: string, ticket: number): boolean {
    if (ticket < (this.applied.get(key) ?? 0)) return false
    this.applied.set(key, ticket)
    return true
  }
}
