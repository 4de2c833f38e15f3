// What the \`plinth\` command says and how it reads its arguments: shared by the read-only commands
// (reads.ts) and the ones that open a whole Host (commands.ts).
import type { Tenant } from '../tenancy/registry.ts'

export const USAGE = `Usage: plinth <command> [options]

  tenant create <code> --name <name> [--domain <host>]   create a tenant, its schema and tables
  tenant create-many <file|->                             create the tenants a JSON list names: [{"code", "name", "domain"?}, ...]
      [--concurrency <n>] [--batch-size <n>]              (defaults 2 and 25; see docs/benchmarks.md)
  tenant list                                             list tenants
  tenant show <code>                                      one tenant
  tenant suspend <code>                                   refuse its requests (403 TENANT_SUSPENDED)
  tenant resume <code>                                    serve it again
  tenant drop <code> --confirm <code>                     delete the tenant and ALL its data
  tenant move <code> --to <host:port>                     move its schema to another Citus worker while it serves
  tenant export <code> [--out <file>] [--with-access]   one archive of the tenant (standard output without --out);
                                                          --with-access: its roles, grants and keys' names too
  tenant import <file|-> --as <code> [--replace]          a tenant from an archive, under the code given; --replace:
      [--name <name>] [--domain <host>]                   swap out the tenant of that code once the import is ready
  tenant clone <code> --as <code> [--with-access]         a copy of a tenant under another code (export into import)
  migrate [--tenant <code>]                               apply pending migrations, report per tenant (the only command that migrates);
                                                          --tenant: only what is pending for that tenant
  demo                                                    a demo tenant with sample items and a key, and the curl to try
  doctor [--url http://host:port]                         the seed's checklist and plinth's own; exit 1 when a check fails
  orphan-roles [--drop]                                   tenant roles on this server whose database is gone; --drop removes them
  key create --tenant <code> --name <name> [--role <r>]...  issue an API key (its secret is shown once)
  key list --tenant <code>                                the tenant's keys (never their secrets)
  key revoke <key id> --tenant <code>                     the key stops working on every instance
  role list --tenant <code>                               roles, grants, holders, grants that give nothing
  role create <name> --tenant <code> [--description <d>]
  role delete <name> --tenant <code>
  role grant <role> <permission> --tenant <code>          exact (inventory.items.read) or pattern (inventory.*, *)
  role revoke <role> <permission> --tenant <code>
  role assign <role> --principal <key:id|user:sub> --tenant <code>
  role unassign <role> --principal <key:id|user:sub> --tenant <code>
  module list                                             modules found, with status and reason
  module enable <id> --tenant <code>                      enable a module for a tenant (applies its migrations)
  module disable <id> --tenant <code>                     its routes answer 404 there; its data stays
  module new <id> [--dir <folder>]                        scaffold a module (src/plugins, or a folder of your own)
  audit list [filters] [--limit <n>] [--cursor <c>]       the audit trail, newest first; filters:
      [--actor <kind[:id]>] [--action <a>] [--tenant <code>] [--since <time>] [--until <time>]
  audit export [filters] [--format ndjson|csv]            every event in range, oldest first, streamed to stdout
  audit verify [--head <seq>:<hash>]                      recompute the chain; exit 1 naming the first broken link
                                                          (--head: a checkpoint the log recorded)
  audit prune --before <time>                             remove older events, sealing the chain first
  console sessions [list] [--all]                         live console sessions (--all: ended ones too)
  console sessions revoke <id> | --all                    end a console session (or every one) at once
  worker                                                  run the modules' jobs and schedules, serving no HTTP (docs/jobs.md)
  jobs list [--tenant <code>] [--module <id>]             jobs in the queue, due first
      [--state queued|running|failed] [--limit <n>]
  jobs show <id>                                          one job: its payload, attempts, last error
  jobs retry <id>...                                      run jobs again now, attempts reset (not one running)
  jobs cancel <id>...                                     take jobs out of the queue (not one running)

Options: --json (machine-readable output), -h, --help
Every command but migrate refuses (exit 1) a database whose public migrations are pending. The
read-only ones (tenant list|show, key list, role list, module list, audit list|export|verify, jobs list|show) import no module's code, and
read a brand-new database (nothing applied yet) as empty.
Environment: DATABASE_URL, or PLINTH_DATA_DIR for the embedded database (see .env.example); what
the environment does not set is read from .env in the working folder (PLINTH_ENV_FILE: another file, or none).
`

export class UsageError extends Error {}

export interface CommandOutput {
  text: string
  json: unknown
  exitCode?: number
  /** The command wrote its output to stdout as it went (an export): nothing is left to print. */
  streamed?: boolean
}

export type Options = {
  drop?: boolean; to?: string; out?: string; as?: string; replace?: boolean; 'with-access'?: boolean; concurrency?: string; 'batch-size'?: string; name?: string; domain?: string; confirm?: string; tenant?: string
  role?: string[]; principal?: string; description?: string; url?: string
  all?: boolean; actor?: string; action?: string; since?: string; until?: string; before?: string; limit?: string; cursor?: string; format?: string; head?: string; module?: string; state?: string
}

/** A time given on the command line: anything Date reads (2026-12-01, 2026-12-01T10:00:00Z). */
export function timeOption(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined
  const time = new Date(value)
  if (Number.isNaN(time.getTime())) throw new UsageError(`${flag} takes a time such as 2026-12-01 or 2026-12-01T10:00:00Z, got ${JSON.stringify(value)}`)
  return time
}

export function one(args: string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected one ${what}, got ${args.length}`)
  return args[0]
}

export function two(args: string[], what: string): [string, string] {
  if (args.length !== 2) throw new UsageError(`expected ${what}, got ${args.length} argument(s)`)
  return [args[0], args[1]]
}

export function needTenant(options: Options): string {
  if (!options.tenant) throw new UsageError('this command needs --tenant <code>')
  return options.tenant
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}

export function tenantTable(tenants: Tenant[]): string {
  if (tenants.length === 0) return 'no tenants\n'
  return table([
    ['CODE', 'NAME', 'STATUS', 'DOMAIN', 'SCHEMA', 'CREATED'],
    ...tenants.map((t) => [t.code, t.name, t.status, t.domain ?? '-', t.schema, t.createdAt]),
  ])
}
