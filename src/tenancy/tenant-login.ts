// The credential a tenant's role logs in with. Nothing is stored: the password is derived from
// the host's secret and the role's name, so every instance that shares the secret computes the
// same one, and a role created by one instance is reachable from all of them.
//
// The role is created (or repaired) with a SCRAM-SHA-256 verifier computed here, so the password
// itself never travels to the server, nor into its log when statements are logged.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type pg from 'pg'
import { problems } from '../problems.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'

const pbkdf2Async = promisify(pbkdf2)

// Iterations make guessing a low-entropy password from its verifier slow; these passwords are 256
// bits of HMAC output, which no number of guesses finds. So the count is kept low: both the host
// and the server run it on every new tenant connection (PostgreSQL's default, 4096, costs a few
// milliseconds of CPU on each side per login).
const SCRAM_ITERATIONS = 16

/** The password of `role` under `secret`: base64url of HMAC-SHA-256 (43 characters). */
export function tenantPassword(secret: string, role: string): string {
  return createHmac('sha256', secret).update(`plinth tenant login:${role}`).digest('base64url')
}

/** A SCRAM-SHA-256 verifier for `password` (RFC 7677), as `CREATE ROLE ... PASSWORD` takes it. */
export async function scramVerifier(password: string): Promise<string> {
  const salt = randomBytes(16)
  const salted = await pbkdf2Async(password, salt, SCRAM_ITERATIONS, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** How tenant roles log in: each role with its derived password. */
export interface TenantLogins {
  /**
   * Loads the secret now. A caller about to hold a pooled connection while it asks for
   * verifiers calls this first: the secret may live in the database, and asking for it then takes
   * a second connection, which a pool held by N such callers at once does not have.
   */
  ready(): Promise<void>
  password(role: string): Promise<string>
  /** A verifier for the role's password, as SQL text ready to follow PASSWORD. */
  verifierLiteral(role: string): Promise<string>
}

/** `secret` is asked for once, when a login is first needed (it may live in the database). */
export function tenantLogins(secret: () => Promise<string>): TenantLogins {
  let loaded: Promise<string> | undefined
  const key = () => (loaded ??= secret())
  return {
    ready: async () => void (await key()),
    password: async (role) => tenantPassword(await key(), role),
    // A verifier is base64 and `$:` only: no quote can appear in it.
    verifierLiteral: async (role) => `'${await scramVerifier(tenantPassword(await key(), role))}'`,
  }
}

/** The secret in public.sys_setting (migration public/006), for a host given no PLINTH_TENANT_SECRET. */
export async function storedTenantSecret(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ value: string }>(`SELECT value FROM public.sys_setting WHERE name = 'tenant_login_secret'`)
  if (!rows[0]) throw new Error('public.sys_setting has no tenant_login_secret: run `plinth migrate`')
  return rows[0].value
}

/**
 * Lets a tenant's role log in again with the password this host derives (a role made by an
 * earlier plinth was NOLOGIN; a changed secret changes every password). Only a role some tenant
 * has: anything else is a tenant that is gone.
 */
export async function repairTenantLogin(pool: pg.Pool, logins: TenantLogins, role: string): Promise<void> {
  const { rowCount } = await pool.query('SELECT 1 FROM public.sys_tenant WHERE role_name = $1', [role])
  if (!rowCount) throw problems.tenantNotFound()
  await pool.query(`ALTER ROLE ${quoteIdent(role)} WITH LOGIN NOINHERIT PASSWORD ${await logins.verifierLiteral(role)}`).catch((err) => {
    // The role was dropped with its tenant by another instance, whose change has not reached this one.
    if (err?.code === '42704') throw problems.tenantNotFound()
    throw err
  })
}
