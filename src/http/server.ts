// Runs a plinth host as a server: validate the configuration, open the host, listen; on SIGTERM or
// SIGINT stop accepting, let requests in flight finish (bounded by PLINTH_SHUTDOWN_TIMEOUT_MS),
// close the pool and the embedded database, exit 0.
import closeWithGrace from 'close-with-grace'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { buildApp, type AppOptions } from './app.ts'
import { loadConfig, type Config } from '../app/config.ts'
import { loadEnvFile } from '../app/env-file.ts'
import { Host } from '../app/host.ts'
import { createLogger } from '../platform/logger.ts'
import { PLINTH_VERSION } from '../app/version.ts'
import { runtimeNotice } from '../platform/runtime.ts'
import type { Metrics } from '../app/metrics.ts'
import { PROBLEM_CONTENT_TYPE, problemBody } from '../problems.ts'

export async function runServer(appOptions: AppOptions = {}) {
  let config: Config
  let envFile: string | undefined
  try {
    envFile = loadEnvFile()
    config = loadConfig()
  } catch (err) {
    process.stderr.write(`plinth: ${(err as Error).message}\n`)
    process.exit(1)
  }

  // Before the logger and the host: its lines carry trace ids, its pools trace their statements.
  const telemetry = config.otel ? (await import('../platform/otel/setup.ts')).startTracing({ serviceVersion: PLINTH_VERSION }) : undefined
  const log = createLogger(config)
  if (envFile) log.info({ file: envFile }, 'settings read from the env file, under the environment')
  for (const line of config.deprecations) log.warn(line)
  const runtime = runtimeNotice()
  if (runtime) log.warn(runtime)
  // Log writes are asynchronous: flush them before exiting, or the reason for the exit is lost.
  const exit = (code: number) => log.flush(() => process.exit(code))
  let host: Host
  try {
    host = await Host.open({ config, log })
  } catch (err) {
    log.fatal({ err }, 'could not start: database or migrations failed')
    return exit(1)
  }
  let app
  try {
    app = await buildApp(host, appOptions)
  } catch (err) {
    log.fatal({ err }, 'could not start')
    await host.close()
    return exit(1)
  }

  let metricsServer: http.Server | undefined
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down: draining requests')
    metricsServer?.close()
    await app.close()
    await telemetry?.shutdown()
    log.info('stopped')
    await new Promise<void>((resolve) => log.flush(() => resolve()))
  })

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    log.fatal({ err }, 'could not listen')
    await app.close()
    return exit(1)
  }
  if (config.jobs) await startJobs(host, log)
  const metrics = host.requests?.metrics
  if (metrics && config.metricsPort !== undefined) metricsServer = await serveMetrics(metrics, config.host, config.metricsPort, log)
  if (host.registry.size === 0) log.info({ firstRun: true }, firstRunHint(app))
  return app
}

/** Runs the modules' jobs in this process (PLINTH_JOBS=1, the default); a failure to start leaves the API serving. */
export async function startJobs(host: Host, log: Logger) {
  try {
    await host.jobs.start()
    log.info({ jobs: host.jobDefinitions.all().length, schedules: host.jobDefinitions.schedules.length }, 'jobs: running')
  } catch (err) {
    log.error({ err }, 'jobs: could not start the worker; jobs wait until one runs')
  }
}

/** What a newcomer does next, in one line, when the host starts with no tenant yet. */
function firstRunHint(app: { listeningOrigin: string }): string {
  const origin = app.listeningOrigin
  return (
    `No tenant yet. Next: \`npx plinth demo\` (a demo tenant, sample items and a key, and the curl to try), ` +
    `or \`npx plinth tenant create acme --name Acme\`, then \`npx plinth key create --tenant acme --name me --role admin\`, ` +
    `then \`curl -H 'Authorization: Bearer <key>' ${origin}/api/plugins/inventory/items\`. API docs: ${origin}/docs; guides: README.md, docs/modules.md`
  )
}

/** METRICS_PORT: /metrics on a port of its own, for a scraper inside the network; no token there. */
async function serveMetrics(metrics: Metrics, hostname: string, port: number, log: Logger): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      // Even here, the one error shape.
      const body = problemBody(404, 'NOT_FOUND', 'This port serves GET /metrics only.', { id: randomUUID(), url: req.url ?? '' })
      res.writeHead(404, { 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(body))
      return
    }
    res.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.text())
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, hostname, resolve))
  const address = server.address() as AddressInfo
  log.info({ port: address.port }, `metrics listening at http://${hostname}:${address.port}/metrics`)
  return server
}
