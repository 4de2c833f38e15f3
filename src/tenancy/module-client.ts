// What module code queries through (req.db and withTenantTx's db): the request's pooled client,
// behind a query function that refuses what would let a module step out of its tenant scope:
// ending or splitting the transaction the host commits (COMMIT, ROLLBACK, BEGIN, SAVEPOINT...),
// changing the role or the search_path, or resetting the session. Every statement goes by the
// extended protocol, so one query is one statement: nothing can ride behind a harmless one.
// Defence in depth, not a sandbox: module code runs in the host's process (docs/security.md).
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

/** The `query` a module's Drizzle runs on: the pooled client's, guarded. */
export function moduleQueryClient(client: pg.PoolClient) {
  return {
    query(config: string | pg.QueryConfig, values?: unknown[]) {
      const query: pg.QueryConfig & { queryMode?: 'extended' } =
        typeof config === 'string' ? { text: config, values } : { ...config, values: values ?? config.values }
      const refused = refusal(query.text)
      if (refused) return Promise.reject(refused)
      query.queryMode = 'extended'
      return client.query(query)
    },
  }
}

export type ModuleQueryClient = ReturnType<typeof moduleQueryClient>
