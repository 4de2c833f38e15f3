// One tenant out and back in: `plinth tenant export|import|clone` and their admin routes. The
// archive's format and its reading and loading are tenancy/archive/'s; this file strings them
// together with the host's services (tenants, keys, roles, migrate) and audits each as one event.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import pg from 'pg'
import type { Writable } from 'node:stream'
import { HttpProblem, problems } from '../problems.ts'
import { appendAuditAlone, type AuditEvent } from '../platform/audit/append.ts'
import { recordChange } from '../platform/db/changes.ts'
import { PLATFORM_SEARCH_PATH } from '../platform/db/platform-transaction.ts'
import type { Tenant } from '../tenancy/registry.ts'
import { TenantSnapshot, writeArchive } from '../tenancy/archive/export.ts'
import { checkDigests, parseArchive } from '../tenancy/archive/format.ts'
import { loadRows, sourcesAtArchive, stagingCode, tenantTaken, type ArchiveSource } from '../tenancy/archive/import.ts'
import { readManifest, type TenantManifest } from '../tenancy/archive/manifest.ts'
import type { Host } from './host.ts'
import { PLINTH_VERSION } from './version.ts'

export interface ImportOptions {
  /** The code the tenant takes here. */
  as: string
  /** Replace the tenant that has that code: it serves until the import is ready, then they swap. */
  replace?: boolean
  /** Default: the archive's name (or, replacing, the replaced tenant's). */
  name?: string
  /** Default: none (or, replacing, the replaced tenant's): a domain names one tenant of a host. */
  domain?: string | null
}

export interface ImportResult {
  tenant: Tenant
  /** The code of the tenant it was made from. */
  from: string
  replaced: boolean
  tables: number
  rows: number
  /** Keys re-issued from the archive's (--with-access): their secrets, shown this once. */
  keys: { id: string; name: string; key: string }[]
}

const NO_SINK = { write: () => {}, end: async () => {} }

export class TenantArchives {
  constructor(private readonly host: Host) {}

  /**
   * Writes tenant `code`'s archive to `out` (not ended), from one snapshot of it, and audits it.
   * `withAccess`: with its roles, grants, holders and keys' names (never a secret or a hash).
   * `onStart` is called once the snapshot is open and the tenant found exportable, before the
   * first byte is written: until then a failure can still be answered as an error.
   */
  async export(code: string, out: Writable, { withAccess = false, onStart }: { withAccess?: boolean; onStart?: () => void } = {}): Promise<TenantManifest> {
    const tenant = await this.host.tenants.get(code)
    const manifest = await this.withSnapshot(tenant, withAccess, (snapshot) => {
      onStart?.()
      return writeArchive(snapshot, out)
    })
    await appendAuditAlone(this.host.pool, {
      action: 'tenant.exported',
      target: code,
      tenant: code,
      changes: { withAccess, tables: manifest.tables.length, rows: manifest.tables.reduce((sum, t) => sum + t.rows, 0) },
    })
    return manifest
  }

  /**
   * Imports the archive in file `path`: read through once to check every table against the
   * manifest before anything is created, then again to load it.
   */
  importFile(path: string, options: ImportOptions): Promise<ImportResult> {
    return this.importFileAs(path, options, 'tenant.imported')
  }

  /**
   * Imports the archive `input` carries (standard input, a request's body): saved to a temporary
   * file as it arrives, since an import reads its archive twice, never held in memory.
   */
  importStream(input: Readable, options: ImportOptions): Promise<ImportResult> {
    return withTempFile(async (file) => {
      await pipeline(input, fs.createWriteStream(file))
      return this.importFile(file, options)
    })
  }

  private async importFileAs(path: string, options: ImportOptions, action: string): Promise<ImportResult> {
    const read = await parseArchive(fs.createReadStream(path), async () => NO_SINK)
    const manifest = readManifest(read.manifest)
    checkDigests(manifest, read.tables)
    const source: ArchiveSource = {
      manifest,
      // The file is read again: what is loaded must be what was checked, or the load rolls back.
      load: async (onTable) => checkDigests(manifest, (await parseArchive(fs.createReadStream(path), onTable)).tables),
    }
    return this.import(source, options, { action, exportedAt: manifest.exportedAt })
  }

  /**
   * Tenant `code` copied into a new tenant (options.as): an export piped into an import, with no
   * file between. The embedded database runs one transaction at a time, and the snapshot's would
   * hold it while the import waits for it: there, the export goes to a temporary file first.
   */
  async clone(code: string, options: ImportOptions & { withAccess?: boolean }): Promise<ImportResult> {
    const tenant = await this.host.tenants.get(code)
    const withAccess = options.withAccess ?? false
    if (this.host.db.kind === 'embedded') {
      return withTempFile(async (file) => {
        const out = fs.createWriteStream(file)
        await this.withSnapshot(tenant, withAccess, (snapshot) => writeArchive(snapshot, out))
        out.end()
        await finished(out)
        return this.importFileAs(file, options, 'tenant.cloned')
      })
    }
    return this.withSnapshot(tenant, withAccess, (snapshot) => {
      const source: ArchiveSource = {
        manifest: snapshot.plan,
        load: async (onTable) => {
          for (const table of snapshot.plan.tables) {
            const sink = await onTable(table.name)
            for await (const chunk of snapshot.rows(table)) await sink.write(chunk)
            await sink.end()
          }
        },
      }
      return this.import(source, options, { action: 'tenant.cloned' })
    })
  }

  private async import(source: ArchiveSource, options: ImportOptions, audit: { action: string; exportedAt?: string }): Promise<ImportResult> {
    const { host } = this
    const { manifest } = source
    const startsWith = sourcesAtArchive(manifest, host.migrationSources())
    const replacing = await host.tenants.get(options.as).catch((err) => {
      if (err instanceof HttpProblem && err.status === 404) return null
      throw err
    })
    if (replacing && !options.replace) throw tenantTaken(options.as)
    const name = options.name ?? replacing?.name ?? manifest.tenant.name
    const domain = options.domain !== undefined ? options.domain : (replacing?.domain ?? null)
    // Replacing, the new tenant is made beside the live one, under a code of its own, until they swap.
    const created = await host.tenants.create({ code: replacing ? stagingCode() : options.as, name, domain: replacing ? null : domain }, { startsWith })
    const issued: ImportResult['keys'] = []
    const moved: string[] = []
    let tenant: Tenant
    let rows: number
    try {
      rows = await this.withClient((client) => loadRows(client, created, source, { copy: host.db.kind === 'postgres' }))
      const failed = (await host.migrateTenant(created.code)).find((r) => r.status !== 'ok')
      if (failed) {
        throw problems.archiveIncompatible(`This host's later migrations of ${failed.source} failed on the archive's rows (${failed.error}); nothing was imported.`)
      }
      const event: AuditEvent = {
        action: audit.action,
        target: options.as,
        tenant: options.as,
        changes: {
          from: manifest.tenant.code,
          ...(audit.exportedAt ? { exportedAt: audit.exportedAt } : {}),
          modules: manifest.modules.map((m) => m.id),
          tables: manifest.tables.length,
          rows,
          replaced: replacing !== null,
          keysIssued: manifest.keys?.length ?? 0,
        },
      }
      tenant = await host.tenants.completeImport(created, {
        code: options.as,
        name,
        domain,
        replacing,
        disabledModules: manifest.modules.filter((m) => !m.enabled).map((m) => m.id),
        event,
        work: async (client) => {
          await client.query(PLATFORM_SEARCH_PATH)
          if (manifest.keys) {
            // The archive's access: its keys re-issued, each holding what the archived one held.
            const renamed = new Map<string, string>()
            for (const key of manifest.keys) {
              const fresh = await host.keys.issueWith(client, created.id, key.name)
              issued.push({ id: fresh.id, name: fresh.name, key: fresh.key })
              renamed.set(key.id, fresh.id)
            }
            await host.roles.renameKeyHoldersWith(client, created.schema, renamed)
          } else if (replacing) {
            // The live tenant's access stays: its keys and roles are the imported tenant's now.
            moved.push(...(await host.keys.moveWith(client, replacing.id, created.id)))
            await host.roles.copyWith(client, replacing.schema, created.schema)
          }
          await recordChange(client, 'rbac', created.id)
        },
      })
    } catch (err) {
      await host.tenants.discard(created.code).catch((dropError) =>
        host.log.error({ err: dropError, tenant: created.code }, 'a tenant whose import failed could not be dropped'),
      )
      throw err
    }
    await host.keys.announce([...issued.map((k) => k.id), ...moved])
    await host.changes.announce('rbac', created.id)
    return { tenant, from: manifest.tenant.code, replaced: replacing !== null, tables: manifest.tables.length, rows, keys: issued }
  }

  private withSnapshot<T>(tenant: Tenant, withAccess: boolean, work: (snapshot: TenantSnapshot) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      const closeOnFailure = this.host.db.kind === 'postgres'
      const snapshot = await TenantSnapshot.open(client, tenant, { withAccess, plinthVersion: PLINTH_VERSION, closeOnFailure })
      let result: T
      try {
        result = await work(snapshot)
      } catch (err) {
        // On PostgreSQL a failed export may leave a COPY running, behind which a ROLLBACK would
        // wait for good: ending the connection (withClient) rolls back. Elsewhere it was read out.
        if (!closeOnFailure) await snapshot.close()
        throw err
      }
      await snapshot.close()
      return result
    })
  }

  /**
   * A connection of the platform's own, not pipelined (COPY needs one), for one piece of work. On
   * the embedded database the pool's one connection is held meanwhile: its socket serves every
   * connection from one session, and another connection's statements sent while this one's
   * transaction runs can find that session in the wrong state ("unnamed prepared statement does
   * not exist"). Other work waits for the pool meanwhile, as it would for any long transaction there.
   */
  private async withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const held = this.host.db.kind === 'embedded' ? await this.host.pool.connect() : null
    const client = new pg.Client({ connectionString: this.host.db.connectionString, application_name: 'plinth archive' })
    // A connection lost mid-work fails the work's query; the event must not also take the process down.
    client.on('error', () => {})
    try {
      await client.connect()
      return await work(client)
    } finally {
      await client.end().catch(() => {})
      held?.release()
    }
  }
}

/** A file in a folder of its own under the system's temporary folder, for `work`; removed after. */
async function withTempFile<T>(work: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'plinth-archive-'))
  try {
    return await work(path.join(dir, 'archive'))
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true })
  }
}
