// The one door from plinth's code to tracing. With tracing off (the default) `tracing` is null and
// no OpenTelemetry code is loaded: every use is `tracing?.…` or a null check, nothing more. With
// PLINTH_OTEL=1, platform/otel/setup.ts installs an implementation before the host opens.
import type pg from 'pg'

export type SpanAttributes = Record<string, string | number | boolean | undefined>

export interface SpanHandle {
  setAttributes(attributes: SpanAttributes): void
  /** Records the error on the span and marks it failed. */
  fail(err: unknown): void
  end(): void
}

export interface Tracing {
  /**
   * `work` in a span, a child of the span active now and active itself while `work` runs (its
   * statements are its children); ended when `work` settles, failed when it throws.
   */
  inSpan<T>(name: string, attributes: SpanAttributes, work: () => T): T
  /** `work` in a span that starts a trace of its own (a job's attempt), sampled as a new trace is. */
  root<T>(name: string, attributes: SpanAttributes, work: () => T): T
  /** A span started now and ended by whoever holds it, not made active (a tenant transaction's). */
  start(name: string, attributes: SpanAttributes): SpanHandle
  /** What `work` sends makes no statement span: the span of what it belongs to tells of it (BEGIN, COMMIT). */
  untraced<T>(work: () => T): T
  /** pg's Client, with a span per statement; the pools make theirs of it. */
  readonly pgClient: typeof pg.Client
  /** The namespace (schema) the statements of this client's transaction run in, for their spans; null to forget it. */
  nameClient(client: pg.ClientBase, namespace: string | null): void
}

export let tracing: Tracing | null = null

export function installTracing(implementation: Tracing | null) {
  tracing = implementation
}
