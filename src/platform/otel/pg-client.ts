// A span per database statement, made where plinth makes its connections: the pools' Client is
// this subclass when tracing is on (never otherwise). Not @opentelemetry/instrumentation-pg: it
// patches pg when pg is require()d, and plinth's ESM import of pg goes round require hooks
// (a loader hook would be needed in every process); plinth owns every connection it opens, so a
// subclass sees every statement, on PostgreSQL, through PgBouncer and on the embedded database.
// Attributes are OpenTelemetry's stable database conventions; parameter values are never recorded.
// A statement is traced only inside traced work (a request, a span a module started).
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'
import { isTracingSuppressed } from '@opentelemetry/core'
import pg from 'pg'

const NAMESPACE = Symbol('plinth.db.namespace')

type Named = { [NAMESPACE]?: string | null }

/** The first keyword of a statement (SELECT, INSERT...), as db.operation.name wants it. */
function operationOf(text: string): string {
  const match = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([a-zA-Z]+)/.exec(text)
  return match ? match[1].toUpperCase() : 'QUERY'
}

export function tracedClient(tracer: Tracer): typeof pg.Client {
  class TracedClient extends pg.Client {
    query(...args: any[]): any {
      const [config] = args
      const active = context.active()
      // Statements of no traced work (the change feed's polling, four a second) start no trace of
      // their own; a cursor or stream (submittable), or statements folded into another span, neither.
      // Nor do statements of a request the sampler left out: their spans would be dropped unrecorded.
      if (!trace.getSpan(active)?.isRecording() || isTracingSuppressed(active) || typeof config?.submit === 'function') return (super.query as any)(...args)
      const text: string = typeof config === 'string' ? config : (config?.text ?? '')
      const operation = operationOf(text)
      const self = this as unknown as pg.Client & Named
      const namespace = self[NAMESPACE] ?? self.database ?? undefined
      const span = tracer.startSpan(
        namespace ? `${operation} ${namespace}` : operation,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'db.system.name': 'postgresql',
            'db.namespace': namespace,
            'db.operation.name': operation,
            'db.query.text': text,
            'server.address': self.host,
            'server.port': self.port,
          },
        },
        active,
      )
      const finish = (err?: unknown) => {
        if (err) {
          span.recordException(err as Error)
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
          const code = (err as { code?: string }).code
          if (code) span.setAttribute('db.response.status_code', code)
        }
        span.end()
      }
      const callbackAt = args.findIndex((arg) => typeof arg === 'function')
      if (callbackAt >= 0) {
        const callback = args[callbackAt]
        args[callbackAt] = (err: unknown, result: unknown) => {
          finish(err)
          callback(err, result)
        }
        return (super.query as any)(...args)
      }
      const result = (super.query as any)(...args)
      result.then(
        () => finish(),
        (err: unknown) => finish(err),
      )
      return result
    }
  }
  return TracedClient
}

export function nameClient(client: pg.ClientBase, namespace: string | null) {
  ;(client as unknown as Named)[NAMESPACE] = namespace
}
