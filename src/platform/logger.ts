// pino, as operators read it, for every layer that logs: JSON lines, credentials redacted wherever they might appear, pretty
// output only when asked for (LOG_PRETTY=1, as `npm run dev` does).
import pino, { type DestinationStream, type Logger } from 'pino'

// Keys whose values are credentials, wherever they sit in a logged object (a request's headers, a
// config object, a module's meta): their values are replaced before the line is written.
const SECRET_KEYS = new Set([
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'api_key',
  'password',
  'token',
  'accesstoken',
  'refreshtoken',
  'secret',
  'clientsecret',
  'admintoken',
  'databaseurl',
  'connectionstring',
])
const REDACTED = '[redacted]'
const MAX_DEPTH = 5

const isSecretKey = (key: string) => SECRET_KEYS.has(key) || SECRET_KEYS.has(key.toLowerCase())
const isPlainObject = (value: object) => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The logged object with every secret-named key's value replaced, at any depth up to MAX_DEPTH,
 * in plain objects and arrays. Copies only what holds a secret: a line without one (every request
 * line) costs one scan of its keys. Not pino's own `redact`: it works by path, and with the
 * wildcard paths this needs it costs an order of magnitude more a line (docs/benchmarks-history.md).
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    value.forEach((item, i) => {
      const redacted = redactSecrets(item, depth + 1)
      if (redacted !== item) (copy ??= [...value])[i] = redacted
    })
    return (copy ?? value) as T
  }
  if (!isPlainObject(value)) return value
  let copy: Record<string, unknown> | undefined
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key]
    const redacted = isSecretKey(key) ? (item === undefined ? item : REDACTED) : redactSecrets(item, depth + 1)
    if (redacted !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = redacted
  }
  return (copy ?? value) as T
}

// pino's isoTime formats a new Date for every line; under load several lines share a millisecond,
// so the string is built once per millisecond instead.
let lastMillis = 0
let lastTime = ''
function isoTimeCachedPerMillisecond() {
  const now = Date.now()
  if (now !== lastMillis) {
    lastMillis = now
    lastTime = `,"time":"${new Date(now).toISOString()}"`
  }
  return lastTime
}

/**
 * A URL as a request line shows it: the values of query parameters with secret names (token,
 * api_key, password...) replaced. A URL without such a name is returned as it is, at no cost.
 */
export function redactUrl(url: string): string {
  const query = url.indexOf('?')
  if (query === -1 || !MIGHT_NAME_A_SECRET.test(url.slice(query))) return url
  return url.slice(0, query) + url.slice(query).replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, sep, name) => (isSecretKey(decodeName(name)) ? `${sep}${name}=${REDACTED}` : whole))
}

// Every secret key name holds one of these: a query without any is left alone without a parse.
const MIGHT_NAME_A_SECRET = /token|key|secret|password|auth|cookie|connection|databaseurl/i

function decodeName(name: string) {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    return name
  }
}

/** The settings it is made from (app/config.ts: LOG_LEVEL, LOG_PRETTY). */
export interface LoggerSettings {
  logLevel: string
  logPretty: boolean
}

export function createLogger(config: LoggerSettings, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: { service: 'plinth' },
    formatters: { log: redactSecrets },
    timestamp: isoTimeCachedPerMillisecond,
  }
  if (destination) return pino(options, destination)
  if (config.logPretty) {
    try {
      return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } })
    } catch {
      // pino-pretty is a dev dependency; a production install falls back to JSON.
    }
  }
  // Buffered, asynchronous writes: one write per 4 KiB of lines instead of one per request
  // (per-request writes cost a third of a request's CPU in the bench). Lines wait at most
  // FLUSH_MS; exits flush first (server.ts).
  const logger = pino(options, pino.destination({ dest: 1, sync: false, minLength: 4096 }))
  setInterval(() => logger.flush(), FLUSH_MS).unref()
  return logger
}

const FLUSH_MS = 250
