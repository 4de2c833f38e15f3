// Runs a plinth host as a server: validate the configuration, open the host, listen; on SIGTERM or
// SIGINT stop accepting, let requests in flight finish (bounded by PLINTH_SHUTDOWN_TIMEOUT_MS),
// close the pool and the embedded database, exit 0.
import closeWithGrace from 'close-with-grace'
import { buildApp, type AppOptions } from './app.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { Host } from './host.ts'
import { createLogger } from './logger.ts'

export async function runServer(appOptions: AppOptions = {}) {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`plinth: ${err.message}\n`)
    process.exit(1)
  }

  const log = createLogger(config)
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

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down: draining requests')
    await app.close()
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
  if (host.registry.size === 0) log.info({ firstRun: true }, firstRunHint(app))
  return app
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
