// A server span per request, when tracing is on (app.ts registers this only then): named by the
// method and the route's template (never the URL a caller sent), continuing the caller's trace
// from traceparent, and tagged at the end with what plinth resolved: plinth.tenant,
// plinth.module, plinth.principal.kind, the status. A 5xx marks it failed; a 4xx is an answer,
// not a failure. Probes (/health/*) and /metrics are not traced. The request's log lines carry
// the trace_id and span_id of its span.
//
// Not @fastify/otel: it names every span "request", marks any thrown error (a 403 too) as a span
// error, and wraps every hook in a span of its own. The span is made active for the request's
// hooks and handler: entered in onRequest, and again before validation and before the handler
// (a body's stream events run outside it), so the statements and module spans below are its children.
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { PLINTH_VERSION } from '../app/version.ts'

const SPAN = Symbol('plinth.requestSpan')
const CONTEXT = Symbol('plinth.requestContext')

type Traced = FastifyRequest & { [SPAN]?: Span; [CONTEXT]?: Context }

function untraced(url: string | undefined, probe: boolean | undefined): boolean {
  return probe === true || url === '/metrics' || (url !== undefined && url.startsWith('/health/'))
}

async function requestTracingPlugin(app: FastifyInstance) {
  const tracer = trace.getTracer('plinth', PLINTH_VERSION)

  app.addHook('onRequest', function startRequestSpan(request, _reply, done) {
    const { url, config } = request.routeOptions
    if (untraced(url, config?.probe)) return done()
    const parent = propagation.extract(ROOT_CONTEXT, request.headers)
    const span = tracer.startSpan(
      url ? `${request.method} ${url}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          ...(url ? { 'http.route': url } : {}),
          'url.path': request.url.split('?')[0],
          'url.scheme': request.protocol,
          'client.address': request.ip,
          'network.protocol.version': request.raw.httpVersion,
        },
      },
      parent,
    )
    // Left out by the sampler: nothing below makes a span (it would be dropped), so no context to
    // enter and nothing to end (a span that records nothing needs no end).
    if (!span.isRecording()) return done()
    const traced = request as Traced
    traced[SPAN] = span
    // Every line the request writes (its own, its modules') names its trace: bound to its logger,
    // so no line outside a sampled request pays for it.
    const { traceId, spanId } = span.spanContext()
    request.log = request.log.child({ trace_id: traceId, span_id: spanId })
    traced[CONTEXT] = trace.setSpan(parent, span)
    context.with(traced[CONTEXT], done)
  })

  const reenter = function reenterRequestSpan(request: FastifyRequest, _reply: unknown, done: () => void) {
    const active = (request as Traced)[CONTEXT]
    if (active) return context.with(active, done)
    done()
  }
  app.addHook('preValidation', reenter)
  app.addHook('preHandler', reenter)

  app.addHook('onError', function recordRequestError(request, _reply, error, done) {
    ;(request as Traced)[SPAN]?.recordException(error)
    done()
  })

  app.addHook('onResponse', function endRequestSpan(request, reply, done) {
    const span = (request as Traced)[SPAN]
    if (!span) return done()
    const status = reply.statusCode
    span.setAttributes({
      'http.response.status_code': status,
      ...(request.tenant ? { 'plinth.tenant': request.tenant.code } : {}),
      ...(request.routeOptions.config?.module ? { 'plinth.module': request.routeOptions.config.module } : {}),
      ...(request.principal ? { 'plinth.principal.kind': request.principal.kind } : {}),
    })
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
    done()
  })
}

export const requestTracing = fp(requestTracingPlugin, { name: 'plinth-request-tracing' })
