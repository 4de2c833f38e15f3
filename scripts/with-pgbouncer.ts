// Runs a command with DATABASE_URL pointing through a PgBouncer started for it (and stopped after):
//   node --import tsx scripts/with-pgbouncer.ts transaction|session -- <command> [args...]
// .ci/run uses it to run suites through PgBouncer in transaction mode as well as directly.
import { spawn } from 'node:child_process'
import { startPgBouncer } from '../test/helpers/pgbouncer.ts'

const [mode, separator, command, ...args] = process.argv.slice(2)
if ((mode !== 'transaction' && mode !== 'session') || separator !== '--' || !command || !process.env.DATABASE_URL) {
  console.error('usage: DATABASE_URL=... node --import tsx scripts/with-pgbouncer.ts transaction|session -- <command> [args...]')
  process.exit(2)
}
const bouncer = await startPgBouncer(mode, process.env.DATABASE_URL)
const url = bouncer.urlFor(process.env.DATABASE_URL)
console.log(`PgBouncer (${mode} pooling) on port ${bouncer.port} in front of the test PostgreSQL`)
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, DATABASE_URL: url } })
const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
await bouncer.stop()
process.exit(code)
