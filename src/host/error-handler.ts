// Turns every error, Fastify's own included, into the one problem+json shape (src/problems.ts).
// Registered at the root, so every encapsulated module context inherits it.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { HttpProblem, sendProblem, toProblem } from '../problems.ts'

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
