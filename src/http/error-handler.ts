// Turns every error, Fastify's own included, into the one problem+json shape (src/problems.ts).
// Registered at the root, so every encapsulated module context inherits it.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { HttpProblem, PROBLEM_CONTENT_TYPE, problemBody, sendProblem, toProblem } from '../problems.ts'

/**
 * A request Node's HTTP parser refused before Fastify saw it (a bad request line, duplicate or
 * conflicting lengths, CR/LF in a header, headers too large): answered in the one error shape too,
 * on the raw socket, and the connection closed.
 */
function answerClientError(err: { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const problem = tooLarge
    ? { status: 431, code: 'HEADERS_TOO_LARGE', detail: 'The request line or its headers are larger than this server accepts.' }
    : { status: 400, code: 'BAD_REQUEST', detail: 'The request is not well-formed HTTP.' }
  const body = JSON.stringify(problemBody(problem.status, problem.code, problem.detail, { id: randomUUID(), url: '' }))
  socket.end(
    `HTTP/1.1 ${problem.status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

/** Fastify's own refusals before routing (a URL that does not decode): the one error shape. */
function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  return sendProblem(request, reply, toProblem(error))
}

/** The Fastify options that route protocol-level errors to the one error shape. */
export const PROTOCOL_ERROR_OPTIONS: FastifyServerOptions & { http: { requireHostHeader: boolean } } = {
  clientErrorHandler: answerClientError,
  frameworkErrors: answerFrameworkError,
  // HTTP/1.1 without Host is refused by plinth (request-context.ts), in the one error shape.
  http: { requireHostHeader: false },
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
