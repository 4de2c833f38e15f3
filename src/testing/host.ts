// A running plinth host on a fresh database, for tap suites: `fastify.inject` for HTTP, the Host
// for direct checks (pool counts, the registry), and every log line it wrote.
import type { FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import { buildApp, type AppOptions } from '../http/app.ts'
import { loadConfig } from '../app/config.ts'
import { Host } from '../app/host.ts'
import { createLogger } from '../platform/logger.ts'
import type { Tenant } from '../tenancy/registry.ts'
import type { JobsRun } from '../jobs/runner.ts'
import { createTestDatabase, type TestDatabase } from './database.ts'

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'

export interface TestHostOptions extends AppOptions {
  /** Settings on top of the test defaults, as environment variables (DB_POOL_MAX: '1', ...). */
  env?: Record<string, string>
  /** Another folder of host migrations (public/ and tenant/), to exercise migration failures. */
  migrationsDir?: string
  /** Reuse a database (to restart a host on it); by default a fresh one, dropped on close. */
  database?: TestDatabase
  /** false: open without migrating, as a CLI command but `migrate` does (a reused database only). Default true. */
  migrate?: boolean
}

export interface TestHost {
  app: FastifyInstance
  host: Host
  database: TestDatabase
  /** Every log line written so far, parsed. */
  logs: Record<string, any>[]
  /** Every log line written so far, as written: what a secret must never appear in. */
  rawLogs(): string
  createTenant(code: string, extra?: { name?: string; domain?: string }): Promise<Tenant>
  /** Runs every job due now (and those they enqueue for now) to completion; what ran. */
  runJobs(): Promise<JobsRun>
  close(): Promise<void>
}

export class LogCapture extends Writable {
  readonly lines: string[] = []
  _write(chunk: Buffer, _encoding: string, done: () => void) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) this.lines.push(line)
    done()
  }
}

export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  const ownsDatabase = !options.database
  // A host's first start on its own migrations: from the migrated template (database.ts).
  const database = options.database ?? (await createTestDatabase({ migrated: options.migrationsDir === undefined }))
  const config = loadConfig({
    LOG_LEVEL: 'info',
    PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    // Suites refuse many credentials on purpose, all from one address; the brake has its own test.
    PLINTH_AUTH_FAILURE_LIMIT: '100000',
    ...database.env,
    ...options.env,
  })
  const capture = new LogCapture()
  const log = createLogger(config, capture)
  let host: Host
  try {
    host = await Host.open({ config, log, migrationsDir: options.migrationsDir, migrate: options.migrate })
  } catch (err) {
    if (ownsDatabase) await database.drop()
    throw err
  }
  const app = await buildApp(host, options)
  await app.ready()
  return {
    app,
    host,
    database,
    get logs() {
      return capture.lines.map((line) => JSON.parse(line))
    },
    rawLogs: () => capture.lines.join('\n'),
    createTenant: (code, extra = {}) => host.tenants.create({ code, name: extra.name ?? `Tenant ${code}`, domain: extra.domain }),
    runJobs: () => host.jobs.runUntilIdle(),
    close: async () => {
      await app.close()
      if (ownsDatabase) await database.drop()
    },
  }
}
