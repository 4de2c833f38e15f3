// API keys, issued per tenant. Held in memory (loaded at start, refreshed through the change
// feed, topic `key`): authenticating a known key costs no query. A key id not in memory (created a
// moment ago on another instance or by the CLI) costs one braked lookup (miss-lookups.ts) before
// it is refused, so a new key works on the very next request and made-up ids cost next to nothing.
import { hash as digest, randomBytes, timingSafeEqual } from 'node:crypto'
import type pg from 'pg'
import { HttpProblem } from '../problems.ts'
import { recordChange, type ChangeFeed } from '../platform/db/changes.ts'
import { appendAudit } from '../platform/audit/append.ts'
import { MissLookups } from '../platform/miss-lookups.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'

export interface ApiKey {
  id: string
  tenantId: string
  name: string
  createdAt: string
  revokedAt: string | null
}

interface CachedKey extends ApiKey {
  secretHash: Buffer
}

const KEY = /^plk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

const hash = (secret: string) => digest('sha256', secret, 'buffer')

function newKeyId(): string {
  return [...randomBytes(12)].map((b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('')
}

const SELECT = `SELECT id, tenant_id AS "tenantId", name, created_at AS "createdAt", revoked_at AS "revokedAt", secret_hash AS "secretHash"
                  FROM public.sys_api_key`

export class ApiKeys {
  private byId = new Map<string, CachedKey>()

  constructor(
    private readonly pool: pg.Pool,
    private readonly changes?: ChangeFeed,
  ) {}

  async load() {
    const { rows } = await this.pool.query(SELECT)
    this.byId = new Map(rows.map((row) => [row.id, toCached(row)]))
  }

  async refresh(id: string) {
    const { rows } = await this.pool.query(`${SELECT} WHERE id = $1`, [id])
    if (rows[0]) this.byId.set(id, toCached(rows[0]))
    else this.byId.delete(id)
  }

  private missLookups = new MissLookups<CachedKey>(async (id) => {
    await this.refresh(id)
    return this.byId.get(id)
  })

  /** The key a bearer token names, if the token is a live key; why not, otherwise. */
  async verify(token: string): Promise<{ key: ApiKey } | { reason: 'malformed key' | 'unknown key' | 'revoked key' | 'bad key secret' }> {
    const match = KEY.exec(token)
    if (!match) return { reason: 'malformed key' }
    const key = this.byId.get(match[1]) ?? (await this.missLookups.find(match[1]))
    if (!key) return { reason: 'unknown key' }
    if (!timingSafeEqual(hash(match[2]), key.secretHash)) return { reason: 'bad key secret' }
    if (key.revokedAt) return { reason: 'revoked key' }
    return { key }
  }

  static looksLikeKey(token: string) {
    return token.startsWith('plk_')
  }

  /**
   * Creates a key; the returned `key` is the only time its secret exists outside the caller.
   * `roles` are what afterInsert assigned it, for the audit row.
   */
  async create(tenant: KeyTenant, name: string, afterInsert?: (client: pg.PoolClient, keyId: string) => Promise<void>, roles: string[] = []) {
    if (typeof name !== 'string' || name.length < 1 || name.length > 100) {
      throw new HttpProblem(400, 'VALIDATION_FAILED', 'The key is invalid.', { errors: [{ path: '/name', message: 'must be 1 to 100 characters' }] })
    }
    const created = await inTransaction(this.pool, async (client) => {
      const issued = await this.issueWith(client, tenant.id, name)
      await afterInsert?.(client, issued.id)
      await appendAudit(client, { action: 'key.created', target: issued.id, tenant: tenant.code, changes: { name, roles } })
      return issued
    }).catch((err) => {
      if (err?.code === '23505') throw new HttpProblem(409, 'KEY_EXISTS', 'This tenant already has a key with this name.')
      throw err
    })
    await this.changes?.announce('key', created.id)
    return created
  }

  /**
   * Issues a key in the caller's transaction, its change recorded (the caller announces it after
   * COMMIT, and audits it): create()'s, and an import's re-issued keys.
   */
  async issueWith(client: pg.PoolClient, tenantId: string, name: string): Promise<ApiKey & { key: string }> {
    const id = newKeyId()
    const secret = randomBytes(32).toString('base64url')
    const { rows } = await client.query(
      `INSERT INTO public.sys_api_key (id, tenant_id, name, secret_hash) VALUES ($1, $2, $3, $4)
       RETURNING id, tenant_id AS "tenantId", name, created_at AS "createdAt", revoked_at AS "revokedAt"`,
      [id, tenantId, name, hash(secret).toString('hex')],
    )
    await recordChange(client, 'key', id)
    return { ...normalise(rows[0]), key: `plk_${id}_${secret}` }
  }

  /**
   * Gives every key of one tenant to another, in the caller's transaction, their changes recorded:
   * a tenant replaced by an import keeps its callers' keys. Returns the keys' ids, to announce.
   */
  async moveWith(client: pg.PoolClient, fromTenantId: string, toTenantId: string): Promise<string[]> {
    const { rows } = await client.query<{ id: string }>('UPDATE public.sys_api_key SET tenant_id = $2 WHERE tenant_id = $1 RETURNING id', [fromTenantId, toTenantId])
    for (const { id } of rows) await recordChange(client, 'key', id)
    return rows.map((r) => r.id)
  }

  /** Tells every instance that these keys changed (after the transaction that changed them committed). */
  async announce(ids: string[]) {
    for (const id of ids) await this.changes?.announce('key', id)
  }

  async list(tenantId: string): Promise<ApiKey[]> {
    const { rows } = await this.pool.query(
      `SELECT id, tenant_id AS "tenantId", name, created_at AS "createdAt", revoked_at AS "revokedAt"
         FROM public.sys_api_key WHERE tenant_id = $1 ORDER BY name`,
      [tenantId],
    )
    return rows.map(normalise)
  }

  async revoke(tenant: KeyTenant, id: string): Promise<ApiKey> {
    const key = await inTransaction(this.pool, async (client) => {
      const { rows } = await client.query(
        `UPDATE public.sys_api_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND tenant_id = $2
         RETURNING id, tenant_id AS "tenantId", name, created_at AS "createdAt", revoked_at AS "revokedAt"`,
        [id, tenant.id],
      )
      if (!rows[0]) throw new HttpProblem(404, 'KEY_NOT_FOUND', 'This tenant has no key with this id.')
      await recordChange(client, 'key', id)
      await appendAudit(client, { action: 'key.revoked', target: id, tenant: tenant.code, changes: { name: rows[0].name } })
      return rows[0]
    })
    await this.changes?.announce('key', id)
    return normalise(key)
  }
}

/** The tenant a key is made or revoked for: its id, and its code for the audit trail. */
export interface KeyTenant {
  id: string
  code: string
}

function toCached(row: any): CachedKey {
  return { ...normalise(row), secretHash: Buffer.from(row.secretHash, 'hex') }
}

function normalise(row: any): ApiKey {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    createdAt: new Date(row.createdAt).toISOString(),
    revokedAt: row.revokedAt ? new Date(row.revokedAt).toISOString() : null,
  }
}
