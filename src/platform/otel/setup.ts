// Turns tracing on (PLINTH_OTEL=1; src/main.ts calls this before it opens the host): an
// OpenTelemetry tracer provider configured by the standard variables, and plinth's tracing door
// (platform/tracing.ts) opened onto it.
//
// - Exporter: OTEL_TRACES_EXPORTER `otlp` (the default: OTLP/HTTP with JSON, to
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces), `console`, or `none`.
// - Sampler: OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the SDK (default
//   parentbased_always_on: a caller's sampled traceparent is followed).
// - Service: OTEL_SERVICE_NAME (default `plinth`).
// - Propagation: W3C Trace Context (traceparent, tracestate) only. Never baggage: it is the
//   caller's to write, and a tenant, module or principal is plinth's to say.
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api'
import { suppressTracing, W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-node'
import { installTracing, type SpanAttributes, type SpanHandle, type Tracing } from '../tracing.ts'
import { nameClient, tracedClient } from './pg-client.ts'

export interface TracingOptions {
  serviceVersion: string
  /** Where spans go; by default from OTEL_TRACES_EXPORTER. A test passes an in-memory one. */
  exporter?: SpanExporter
  /** Export each span as it ends (tests), rather than in batches. */
  immediate?: boolean
  env?: NodeJS.ProcessEnv
}

export interface TracingHandle {
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>
  forceFlush(): Promise<void>
}

function exporterFromEnv(env: NodeJS.ProcessEnv): SpanExporter | undefined {
  const name = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',')[0].trim()
  if (name === 'none') return undefined
  if (name === 'console') return new ConsoleSpanExporter()
  if (name === 'otlp') return new OTLPTraceExporter()
  throw new Error(`OTEL_TRACES_EXPORTER=${name} is not one plinth knows: otlp, console or none`)
}

const defined = (attributes: SpanAttributes): Attributes => Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)) as Attributes

function handle(span: Span): SpanHandle {
  return {
    setAttributes: (attributes) => span.setAttributes(defined(attributes)),
    fail: (err) => {
      span.recordException(err as Error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message })
    },
    end: () => span.end(),
  }
}

export function startTracing(options: TracingOptions): TracingHandle {
  const env = options.env ?? process.env
  const exporter = options.exporter ?? exporterFromEnv(env)
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'plinth', 'service.version': options.serviceVersion }),
    spanProcessors: exporter ? [options.immediate ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)] : [],
  })
  provider.register({ propagator: new W3CTraceContextPropagator() })
  const tracer = provider.getTracer('plinth', options.serviceVersion)

  // Work the sampler left out (its parent span records nothing) makes no span: with
  // parent-based sampling its children would be left out too, and building them is the cost.
  const sampled = () => trace.getSpan(context.active())?.isRecording() === true
  const NO_SPAN: SpanHandle = { setAttributes() {}, fail() {}, end() {} }

  /** `work` with `span` active (under `parent`); the span ends as work settles, failed if it throws. */
  function within<T>(span: Span, parent: Context, work: () => T): T {
    const spanned = handle(span)
    return context.with(trace.setSpan(parent, span), () => {
      let result
      try {
        result = work()
      } catch (err) {
        spanned.fail(err)
        span.end()
        throw err
      }
      if (result instanceof Promise) {
        return result.then(
          (value) => {
            span.end()
            return value
          },
          (err) => {
            spanned.fail(err)
            span.end()
            throw err
          },
        ) as T
      }
      span.end()
      return result
    })
  }

  const implementation: Tracing = {
    inSpan(name, attributes, work) {
      if (!sampled()) return work()
      return within(tracer.startSpan(name, { attributes: defined(attributes) }), context.active(), work)
    },
    root(name, attributes, work) {
      const span = tracer.startSpan(name, { root: true, attributes: defined(attributes) }, ROOT_CONTEXT)
      if (!span.isRecording()) return work()
      return within(span, ROOT_CONTEXT, work)
    },
    start: (name, attributes) => (sampled() ? handle(tracer.startSpan(name, { attributes: defined(attributes) })) : NO_SPAN),
    untraced: (work) => (sampled() ? context.with(suppressTracing(context.active()), work) : work()),
    pgClient: tracedClient(tracer),
    nameClient,
  }
  installTracing(implementation)
  return {
    shutdown: async () => {
      installTracing(null)
      await provider.shutdown()
      trace.disable()
      context.disable()
      propagation.disable()
    },
    forceFlush: () => provider.forceFlush(),
  }
}
