// Bounding code plinth does not control (a module's register or health, a database that may not
// answer) in time, with the platform's own timer: AbortSignal.timeout.

/** `work`'s result, or a rejection naming `what` once `ms` have passed; `work` itself is not stopped. */
export function within<T>(ms: number, what: string, work: () => T | Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(ms)
  return Promise.race([
    Promise.resolve().then(work),
    new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error(`${what} did not finish within ${ms} ms`)), { once: true })
    }),
  ])
}
