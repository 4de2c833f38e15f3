// plinth <command>: operate a plinth database whether or not a host is running on it. It reads the
// same environment as the host (DATABASE_URL, or the embedded database in PLINTH_DATA_DIR). Each
// command opens only what it needs: a read-only one the database alone (reads.ts); one that writes
// a whole Host, with its modules' code, on a database whose public migrations are all applied;
// `plinth migrate` is the one that applies them.
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../app/config.ts'
import { HttpProblem } from '../problems.ts'
import { actingAs } from '../platform/audit/actor.ts'
import { createLogger } from '../platform/logger.ts'
import { loadEnvFile } from '../app/env-file.ts'
import { PendingMigrationsError } from '../tenancy/migration-files.ts'
import { openReader, reads } from './reads.ts'
import { UsageError, USAGE, type CommandOutput } from './usage.ts'
import { scaffoldModule, ScaffoldError } from './scaffold.ts'

/**
 * The commands that write and need the modules' code: to know which modules load, to apply a
 * module's migrations, or to run register(ctx) (doctor). The other writes (keys, roles, a tenant's
 * status, drop or move) import none of it.
 */
const NEED_MODULES = new Set(['tenant create', 'tenant create-many', 'tenant import', 'tenant clone', 'module enable', 'module disable', 'demo', 'doctor', 'migrate', 'worker'])

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      domain: { type: 'string' },
      confirm: { type: 'string' },
      tenant: { type: 'string' },
      role: { type: 'string', multiple: true },
      principal: { type: 'string' },
      description: { type: 'string' },
      url: { type: 'string' },
      dir: { type: 'string' },
      concurrency: { type: 'string' },
      to: { type: 'string' },
      'batch-size': { type: 'string' },
      actor: { type: 'string' },
      action: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      before: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      format: { type: 'string' },
      head: { type: 'string' },
      module: { type: 'string' },
      state: { type: 'string' },
      out: { type: 'string' },
      as: { type: 'string' },
      replace: { type: 'boolean', default: false },
      'with-access': { type: 'boolean', default: false },
      drop: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const [given, action, ...rest] = positionals
  // `plugin list|enable|disable` are the deprecated names of `module ...`.
  const group = given === 'plugin' ? 'module' : given
  if (given === 'plugin') process.stderr.write(`plinth: "plinth plugin ${action ?? ''}" is deprecated: name it "plinth module ${action ?? ''}"\n`)
  if (group === 'module' && action === 'new' && !values.help) return newModule(rest, values.dir)
  const read = Object.hasOwn(reads, `${group} ${action}`) ? reads[`${group} ${action}`] : undefined
  const commands = read ? {} : (await import('./commands.ts')).commands
  const named = Object.hasOwn(commands, `${group} ${action}`) ? commands[`${group} ${action}`] : undefined
  const command = named ?? (Object.hasOwn(commands, group ?? '') ? commands[group!] : undefined)
  if (values.help || !(read || command)) {
    process.stdout.write(USAGE)
    return values.help || !group ? 0 : 2
  }
  const args = read || named ? rest : [action, ...rest].filter(Boolean)

  loadEnvFile()
  const config = loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' })
  for (const line of config.deprecations) process.stderr.write(`plinth: ${line}\n`)
  // Logs go to stderr: stdout is the command's output, for people and for pipes.
  const log = createLogger(config, process.stderr)
  let output: CommandOutput
  if (read) {
    const reader = await openReader(config, log)
    try {
      output = await read(reader, args, values)
    } finally {
      await reader.close()
    }
  } else {
    const { Host } = await import('../app/host.ts')
    const key = named ? `${group} ${action}` : group!
    // Every change the command makes is audited as the OS user's who ran it (a migrate's too).
    output = await actingAs({ kind: 'cli', id: osUser() }, async () => {
      // A command serves no request: no identities, brake or metrics.
      // The worker lives on: it follows changes (a tenant suspended, a module disabled) as the server does.
      const host = await Host.open({ config, log, followChanges: group === 'worker', migrate: group === 'migrate' && !values.tenant, modules: NEED_MODULES.has(key), requests: false })
      try {
        return await command!(host, args, values)
      } finally {
        await host.close()
      }
    })
  }
  if (!output.streamed) process.stdout.write(values.json ? JSON.stringify(output.json, null, 2) + '\n' : output.text)
  return output.exitCode ?? 0
}

/** Who runs this command, as the system knows them; a container's user may have no name. */
function osUser(): string {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USER ?? `uid ${process.getuid?.() ?? 'unknown'}`
  }
}

/** `plinth module new`: writes files, needs no database. */
function newModule(args: string[], dir: string | undefined): number {
  if (args.length !== 1) throw new UsageError(`module new takes one module id, got ${args.length}`)
  const made = scaffoldModule(args[0], dir)
  const root = path.dirname(made.moduleDir)
  const lines = [`created module ${args[0]} in ${made.moduleDir}`, ...made.files.map((f) => `  ${f}`), '', 'Next:']
  if (made.standalone) {
    lines.push(
      `  cd ${root} && npm install          # links this plinth; tap, tsx and typescript`,
      `  npx tap                            # the module's suite (embedded database, or DATABASE_URL)`,
      `  npm run typecheck`,
      `  PLINTH_MODULE_DIRS=${root}         # in plinth's .env: the host and the CLI load it from there`,
    )
  } else {
    lines.push(`  npm run test:module -- ${args[0]}     # its suite`, `  npm run dev                          # serve it under /api/plugins/${args[0]}`)
  }
  process.stdout.write(lines.join('\n') + '\n')
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError || err instanceof PendingMigrationsError) process.stderr.write(`plinth: ${err.message}\n`)
    else if (err instanceof ScaffoldError) process.stderr.write(`plinth: ${err.message}\n`)
    else if (err instanceof UsageError || (err as any)?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`plinth: ${err.message}\n\n${USAGE}`)
      process.exit(2)
    } else if (err instanceof HttpProblem) {
      const fields = (err.options.errors ?? []).map((e) => `\n  ${e.path.replace(/^\//, '')}: ${e.message}`).join('')
      process.stderr.write(`plinth: ${err.detail}${fields}\n`)
    } else process.stderr.write(`plinth: ${(err as Error).message}\n`)
    process.exit(1)
  },
)
