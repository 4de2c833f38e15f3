// What module code queries through (req.db and withTenantTx's db): the request's pooled client,
// behind a query function that
// - refuses, by the statement's first words, what a module would only send by mistake: ending or
//   splitting the transaction the host commits (COMMIT, ROLLBACK, BEGIN, SAVEPOINT...), changing
//   the role or the search_path, resetting the session. A filter of SQL text can be talked past
//   (functions, DO blocks, dynamic SQL): it is a guard against mistakes, never the boundary. The
//   boundary is the role the connection logged in as (tenant-connections.ts, docs/security.md);
// - sends every statement by the extended protocol, so one query is one statement: nothing can
//   ride behind a harmless one;
// - bounds each statement in time whatever it set (the watchdog, in 'login' mode);
// - keeps the names of statements prepared by name, which the transaction deallocates as it ends.
import type pg from 'pg'

/** A statement module code may not send; it names what to use instead. */
export class RefusedStatementError extends Error {
  constructor(what: string, instead: string) {
    super(`module code may not ${what}: ${instead}`)
    this.name = 'RefusedStatementError'
  }
}

// The statement's first words, after any leading space and comments.
const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)(?:\s+([A-Za-z_]+))?(?:\s+([A-Za-z_]+))?/
const TRANSACTION_CONTROL = new Set(['begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release', 'prepare'])
const SESSION_SETTINGS = new Set(['role', 'session', 'search_path'])
const SET_CONFIG = /set_config\s*\(\s*'(role|search_path|session_authorization)'/i

function refusal(text: string): RefusedStatementError | undefined {
  const words = LEADING.exec(text)
  if (!words) return undefined
  const first = words[1].toLowerCase()
  if (TRANSACTION_CONTROL.has(first)) {
    return new RefusedStatementError(`${first.toUpperCase()} the request's transaction`, 'the host commits it after the response; use ctx.withTenantTx for a piece of work that may fail on its own')
  }
  if (first === 'reset' || first === 'discard') return new RefusedStatementError(`${first.toUpperCase()} the session`, 'it belongs to the host')
  if (first === 'set') {
    const setting = (words[2]?.toLowerCase() === 'local' ? words[3] : words[2])?.toLowerCase()
    if (setting && SESSION_SETTINGS.has(setting)) return new RefusedStatementError(`SET ${setting}`, "the tenant's role and search_path are the host's to set")
  }
  if (text.includes('set_config') && SET_CONFIG.test(text)) {
    return new RefusedStatementError("set_config() the role or the search_path", "the tenant's role and search_path are the host's to set")
  }
  return undefined
}

/** Bounds a module statement in time from outside the database session, where no SQL can lift it. */
export interface StatementWatchdog {
  /** Past this (ms), the statement is cancelled; 0: no bound. */
  statementTimeoutMs: number
  /** Past this (ms), a statement still waiting for a lock is cancelled; 0: no bound. */
  lockTimeoutMs: number
  cancel(): Promise<void>
  waitingForLock(): Promise<boolean>
}

/** A statement the watchdog cancelled; its SQLSTATE tells the caller which bound it passed. */
class WatchdogCancelled extends Error {
  constructor(readonly code: '57014' | '55P03') {
    super(code === '55P03' ? 'the statement waited for a lock past the lock timeout and was cancelled' : 'the statement ran past the statement timeout and was cancelled')
    this.name = 'WatchdogCancelled'
  }
}

/** The `query` a module's Drizzle runs on: the pooled client's, guarded. */
export function moduleQueryClient(client: pg.PoolClient) {
  const named = new Set<string>()
  const guarded = {
    /** The bounds of the transaction the client serves now (set as each transaction begins). */
    watchdog: undefined as StatementWatchdog | undefined,
    query(config: string | pg.QueryConfig, values?: unknown[]) {
      const query: pg.QueryConfig & { queryMode?: 'extended' } =
        typeof config === 'string' ? { text: config, values } : { ...config, values: values ?? config.values }
      const refused = refusal(query.text)
      if (refused) return Promise.reject(refused)
      query.queryMode = 'extended'
      if (query.name) named.add(query.name)
      const sent = client.query(query)
      return guarded.watchdog ? watched(sent, guarded.watchdog) : sent
    },
    /** `; DEALLOCATE ...` for the statements prepared by name since the last call ('' for none). */
    deallocateNamed(): string {
      if (named.size === 0) return ''
      // pg remembers what it prepared on the connection, and skips the Parse next time: forget them there too.
      const parsed = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection?.parsedStatements
      const sql = [...named].map((name) => {
        if (parsed) delete parsed[name]
        return `; DEALLOCATE "${name.replaceAll('"', '""')}"`
      })
      named.clear()
      return sql.join('')
    },
  }
  return guarded
}

/** A module statement in flight, as the watchdog's scan sees it. */
interface InFlight {
  startedAt: number
  watchdog: StatementWatchdog
  cancelledFor?: WatchdogCancelled['code']
  /** When (ms into the statement) to look at pg_locks again. */
  nextLockCheck: number
}

// One scan for every statement in flight, rather than a timer each: a statement costs a Set entry,
// not a timer armed and cleared. The scan runs while statements are in flight, and stops itself.
const inFlight = new Set<InFlight>()
const SCAN_EVERY_MS = 100
let scanner: NodeJS.Timeout | undefined

function scan() {
  if (inFlight.size === 0) {
    clearInterval(scanner)
    scanner = undefined
    return
  }
  const now = performance.now()
  for (const statement of inFlight) {
    const { watchdog } = statement
    const age = now - statement.startedAt
    if (statement.cancelledFor) continue
    if (watchdog.statementTimeoutMs > 0 && age >= watchdog.statementTimeoutMs) {
      statement.cancelledFor = '57014'
      void watchdog.cancel()
    } else if (watchdog.lockTimeoutMs > 0 && age >= statement.nextLockCheck) {
      statement.nextLockCheck = age + watchdog.lockTimeoutMs
      watchdog.waitingForLock().then(
        (waiting) => {
          if (!waiting || statement.cancelledFor || !inFlight.has(statement)) return
          statement.cancelledFor = '55P03'
          void watchdog.cancel()
        },
        () => {},
      )
    }
  }
}

/** `sent`, cancelled past the watchdog's bounds. */
function watched<T>(sent: Promise<T>, watchdog: StatementWatchdog): Promise<T> {
  const statement: InFlight = { startedAt: performance.now(), watchdog, nextLockCheck: watchdog.lockTimeoutMs }
  inFlight.add(statement)
  scanner ??= setInterval(scan, SCAN_EVERY_MS).unref()
  return sent.then(
    (result) => {
      inFlight.delete(statement)
      return result
    },
    (err) => {
      inFlight.delete(statement)
      throw statement.cancelledFor && (err as { code?: string })?.code === '57014' ? new WatchdogCancelled(statement.cancelledFor) : err
    },
  )
}

export type ModuleQueryClient = ReturnType<typeof moduleQueryClient>
