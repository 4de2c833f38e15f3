// The one error shape plinth sends (RFC 9457 fields plus a stable code), the errors plinth's own
// code throws, and how anything thrown becomes one. Every layer speaks it, so it sits below them
// all. Anything thrown that is not an HttpProblem and carries no 4xx status is a 500 whose
// message never leaves the process.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'

export interface FieldError {
  path: string
  message: string
}

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  error: string
  requestId: string
  errors?: FieldError[]
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** An error meant for the caller: its code and detail are sent as they are. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly options: { headers?: Record<string, string>; errors?: FieldError[]; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause })
    this.name = 'HttpProblem'
  }
}

export function problemBody(
  status: number,
  code: string,
  detail: string,
  request: { id: string; url: string },
  errors?: FieldError[],
): ProblemBody {
  const body: ProblemBody = {
    type: `urn:plinth:error:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: request.url.split('?')[0],
    error: code,
    requestId: request.id,
  }
  if (errors) body.errors = errors
  return body
}

// The errors several parts of plinth raise, named once so every caller says the same thing.
export const problems = {
  tenantRequired: () =>
    new HttpProblem(400, 'TENANT_REQUIRED', "This route needs a tenant: send its code in the x-tenant header, or call the tenant's own domain."),
  tenantNotFound: () => new HttpProblem(404, 'TENANT_NOT_FOUND', 'No tenant matches this request.'),
  tenantSuspended: () => new HttpProblem(403, 'TENANT_SUSPENDED', 'This tenant is suspended.'),
  tenantMismatch: () =>
    new HttpProblem(403, 'TENANT_MISMATCH', 'The tenant named by this request is not the tenant of its credential.'),
  dbUnavailable: (cause?: unknown) =>
    new HttpProblem(503, 'DB_UNAVAILABLE', 'The database is busy or unreachable; try again shortly.', {
      headers: { 'retry-after': '1' },
      cause,
    }),
  unauthorized: () =>
    new HttpProblem(401, 'UNAUTHORIZED', 'A valid credential is required.', { headers: { 'www-authenticate': 'Bearer' } }),
  cachesStale: () =>
    new HttpProblem(503, 'NOT_READY', 'This instance has lost track of recent changes and is catching up; retry shortly.', {
      headers: { 'retry-after': '1' },
    }),
  internal: () =>
    new HttpProblem(500, 'INTERNAL_ERROR', 'Something went wrong on our side; the request id identifies it in our logs.'),
  forbidden: (detail = 'The credential does not grant this.') => new HttpProblem(403, 'FORBIDDEN', detail),
  /** A module called a part of Express plinth does not serve: the module's author reads what to use instead. */
  unsupportedExpressCall: (detail: string) => new HttpProblem(501, 'UNSUPPORTED_EXPRESS_CALL', detail),
  /** A tenant archive that is not one, or is one this host cannot read (tenancy/archive/manifest.ts). */
  archiveInvalid: (detail: string) => new HttpProblem(400, 'ARCHIVE_INVALID', detail),
  /** A tenant archive whose rows differ from what its manifest says: changed or cut after export. */
  archiveCorrupt: (what: string) => new HttpProblem(400, 'ARCHIVE_CORRUPT', `The archive was changed or damaged: ${what}. Nothing was imported.`),
  /** A tenant archive this host's modules cannot take (a module missing, or older than the archive's). */
  archiveIncompatible: (detail: string) => new HttpProblem(409, 'ARCHIVE_INCOMPATIBLE', detail),
  /** A tenant whose data an archive cannot hold faithfully (a foreign key out of its schema, a cycle). */
  tenantNotExportable: (detail: string) => new HttpProblem(409, 'TENANT_NOT_EXPORTABLE', detail),
}

const FASTIFY_CODES: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'This content type is not accepted here; send application/json.' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE', detail: 'The request body is larger than this server accepts.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'MALFORMED_JSON', detail: 'The request body is not valid JSON.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'MALFORMED_JSON', detail: 'The request says it sends JSON but its body is empty.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', detail: 'The Content-Length header does not match the body.' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_REQUEST', detail: 'The request URL is malformed.' },
}

const SQLSTATE_PROBLEMS: Record<string, { status: number; code: string; detail: string }> = {
  '23505': { status: 409, code: 'CONFLICT', detail: 'A record with the same unique value already exists.' },
  '23503': { status: 409, code: 'CONFLICT', detail: 'The record refers to, or is referred to by, another record.' },
  '22P02': { status: 400, code: 'BAD_REQUEST', detail: 'A value in the request has the wrong format.' },
  '23502': { status: 422, code: 'MISSING_VALUE', detail: 'A value the record needs is missing.' },
  '23514': { status: 422, code: 'CHECK_VIOLATION', detail: 'A value in the request breaks a rule of the record.' },
  '57014': { status: 504, code: 'STATEMENT_TIMEOUT', detail: 'The database took too long on this request (DB_STATEMENT_TIMEOUT_MS).' },
  '55P03': { status: 503, code: 'LOCK_TIMEOUT', detail: 'The record is locked by other work; try again shortly.' },
}

/**
 * PostgreSQL's data exceptions (class 22: too long, out of range, a NUL byte, a bad date...), which
 * a caller's input causes: a 400 that names no value, and a log line that carries none.
 */
const DATA_EXCEPTION = { status: 400, code: 'INVALID_VALUE', detail: 'A value in the request cannot be stored: too long, out of range, or malformed.' }

const POOL_TIMEOUT = /timeout exceeded when trying to connect|Connection terminated due to connection timeout/

/**
 * The database went away under the request: refused, reset, shut down or terminated (SQLSTATE
 * classes 08 and 57P), or pg found the connection dead before sending.
 */
function isConnectionLoss(err: any): boolean {
  const code = typeof err?.code === 'string' ? err.code : ''
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || /^(08|57P)/.test(code)) return true
  return typeof err?.message === 'string' && CONNECTION_LOST.test(err.message)
}
const CONNECTION_LOST = /^Connection terminated|is not queryable/

export function codeForStatus(status: number): string {
  return (STATUS_CODES[status] ?? 'ERROR').toUpperCase().replace(/[^A-Z0-9]+/g, '_')
}

/** Classifies any thrown value into what the caller may be told. */
export function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error
  const err = error as Partial<FastifyError> & { validation?: unknown[]; validationContext?: string; code?: string }
  if (Array.isArray(err?.validation)) {
    const context = err.validationContext ?? 'body'
    const errors: FieldError[] = err.validation.map((v: any) => ({
      path: `/${context}${v.instancePath ?? ''}`,
      message: v.message ?? 'is invalid',
    }))
    return new HttpProblem(400, 'VALIDATION_FAILED', `The request ${context} is invalid.`, { errors })
  }
  // Drizzle wraps the driver's error: the SQLSTATE is on its cause.
  const driverError = (err as any)?.cause ?? err
  const sqlState = driverError?.code
  const known =
    (err?.code && FASTIFY_CODES[err.code]) ||
    (typeof sqlState === 'string' && (SQLSTATE_PROBLEMS[sqlState] ?? (sqlState.startsWith('22') ? DATA_EXCEPTION : undefined))) ||
    undefined
  if (known) {
    const retry = known.status === 503 ? { headers: { 'retry-after': '1' } } : {}
    return new HttpProblem(known.status, known.code, known.detail, retry)
  }
  if (typeof err?.message === 'string' && POOL_TIMEOUT.test(err.message)) return problems.dbUnavailable(error)
  if (isConnectionLoss(driverError)) return problems.dbUnavailable(error)
  // `statusCode` (Fastify, http-errors) or `status` (Express habit) on an error meant for the caller.
  const status = err?.statusCode ?? (typeof (err as any)?.status === 'number' ? (err as any).status : 500)
  if (status >= 400 && status < 500) {
    // 4xx errors raised deliberately (sensible's httpErrors, a guard's throw) speak to the caller.
    return new HttpProblem(status, codeForStatus(status), err.message || STATUS_CODES[status] || 'Bad request')
  }
  return problems.internal()
}

/** Sets the status and headers of a problem reply and returns its body. */
export function prepareProblemReply(request: FastifyRequest, reply: FastifyReply, problem: HttpProblem) {
  for (const [name, value] of Object.entries(problem.options.headers ?? {})) reply.header(name, value)
  reply.code(problem.status).type(PROBLEM_CONTENT_TYPE)
  return problemBody(problem.status, problem.code, problem.detail, request, problem.options.errors)
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: HttpProblem) {
  return reply.send(prepareProblemReply(request, reply, problem))
}
