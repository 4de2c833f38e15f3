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
  let host: Host
  try {
    host = await Host.open({ config, log })
  } catch (err) {
    log.fatal({ err }, 'could not start: database or migrations failed')
    process.exit(1)
  }
  let app
  try {
    app = await buildApp(host, appOptions)
  } catch (err) {
    log.fatal({ err }, 'could not start')
    await host.close()
    process.exit(1)
  }

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down: draining requests')
    await app.close()
    log.info('stopped')
  })

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    log.fatal({ err }, 'could not listen')
    await app.close()
    process.exit(1)
  }
  return app
}
