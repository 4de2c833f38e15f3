// Turns every error, Fastify's own included, into the one problem+json shape. Registered at the
// root, so every encapsulated module context inherits it.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import { HttpProblem, PROBLEM_CONTENT_TYPE, problemBody, problems, type FieldError } from './errors.ts'

// Fastify's request-parsing failures, renamed into plinth's stable codes.
const FASTIFY_CODES: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'This content type is not accepted here; send application/json.' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE', detail: 'The request body is larger than this server accepts.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'MALFORMED_JSON', detail: 'The request body is not valid JSON.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'MALFORMED_JSON', detail: 'The request says it sends JSON but its body is empty.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', detail: 'The Content-Length header does not match the body.' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_REQUEST', detail: 'The request URL is malformed.' },
}

// PostgreSQL errors that a caller's input causes, answered without a word of SQL.
const SQLSTATE_PROBLEMS: Record<string, { status: number; code: string; detail: string }> = {
  '23505': { status: 409, code: 'CONFLICT', detail: 'A record with the same unique value already exists.' },
  '23503': { status: 409, code: 'CONFLICT', detail: 'The record refers to, or is referred to by, another record.' },
  '22P02': { status: 400, code: 'BAD_REQUEST', detail: 'A value in the request has the wrong format.' },
}

// pg-pool's own wording when no client frees up within connectionTimeoutMillis.
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
  const known = (err?.code && FASTIFY_CODES[err.code]) || (sqlState && SQLSTATE_PROBLEMS[sqlState]) || undefined
  if (known) return new HttpProblem(known.status, known.code, known.detail)
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

async function errorHandlerPlugin(app: FastifyInstance) {
  app.setErrorHandler(function handleError(error, request, reply) {
    const problem = toProblem(error)
    if (problem.status >= 500) {
      // The whole story goes to the log, keyed by the request id the caller was given.
      request.log.error({ err: error, error: problem.code }, 'request failed')
    } else {
      request.log.info({ error: problem.code, status: problem.status }, 'request refused')
    }
    return sendProblem(request, reply, problem)
  })
  app.setNotFoundHandler(function handleNotFound(request, reply) {
    return sendProblem(request, reply, new HttpProblem(404, 'NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}.`))
  })
}

export const errorHandler = fp(errorHandlerPlugin, { name: 'plinth-error-handler' })
