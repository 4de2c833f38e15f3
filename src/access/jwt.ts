// Bearer JWTs from an outside identity provider. Algorithms are pinned by the kind of key
// configured (HS256 for a secret; RS256 or ES256 for a public key or JWKS), so `none` and
// HS/RS confusion never verify. exp, sub and a tenant claim are required; iss and aud are
// checked when configured.
import { createPublicKey, type KeyObject } from 'node:crypto'
import fs from 'node:fs/promises'
import { createLocalJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose'

/** The identity provider's key and claims to check (PLINTH_JWT_*); at most one key is set. */
export interface JwtConfig {
  /** HS256 shared secret. */
  secret?: string
  /** PEM public key (RSA for RS256, P-256 EC for ES256). */
  publicKeyFile?: string
  /** A JWKS document on disk. */
  jwksFile?: string
  issuer?: string
  audience?: string
}

export interface VerifiedToken {
  subject: string
  tenantCode: string
}

/** How far apart the identity provider's clock and ours may be, for exp, nbf and iat. */
const CLOCK_SKEW_S = 30

export type JwtFailure = 'expired' | 'not yet valid' | 'issued in the future' | 'bad signature' | 'wrong issuer' | 'wrong audience' | 'missing claim' | 'malformed token' | 'jwt not configured'

export class JwtVerifier {
  private constructor(
    private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey | undefined,
    private readonly algorithms: string[],
    private readonly config: JwtConfig,
  ) {}

  static async create(config: JwtConfig): Promise<JwtVerifier> {
    if (config.secret) return new JwtVerifier(new TextEncoder().encode(config.secret), ['HS256'], config)
    if (config.publicKeyFile) {
      const key = createPublicKey(await fs.readFile(config.publicKeyFile, 'utf8'))
      const algorithm = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' ? 'ES256' : undefined
      if (!algorithm) throw new Error('PLINTH_JWT_PUBLIC_KEY_FILE must hold an RSA or P-256 EC public key')
      return new JwtVerifier(key, [algorithm], config)
    }
    if (config.jwksFile) {
      const jwks = createLocalJWKSet(JSON.parse(await fs.readFile(config.jwksFile, 'utf8')))
      return new JwtVerifier(jwks, ['RS256', 'ES256'], config)
    }
    return new JwtVerifier(undefined, [], config)
  }

  static looksLikeJwt(token: string) {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)
  }

  async verify(token: string): Promise<VerifiedToken | { reason: JwtFailure }> {
    if (!this.key) return { reason: 'jwt not configured' }
    try {
      const { payload } = await jwtVerify(token, this.key as any, {
        algorithms: this.algorithms,
        issuer: this.config.issuer,
        audience: this.config.audience,
        requiredClaims: ['exp', 'sub', 'tenant'],
        clockTolerance: CLOCK_SKEW_S,
      })
      if (typeof payload.sub !== 'string' || typeof payload.tenant !== 'string') return { reason: 'missing claim' }
      // Issued later than now (past the skew): a forged clock or a token minted for later use.
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_SKEW_S) return { reason: 'issued in the future' }
      // A subject becomes a principal id in the tenant's tables: control characters have no place there.
      if (!/^[^\u0000-\u001f\u007f]{1,200}$/.test(payload.sub)) return { reason: 'malformed token' }
      return { subject: payload.sub, tenantCode: payload.tenant }
    } catch (err) {
      return { reason: jwtFailure(err) }
    }
  }
}

function jwtFailure(err: unknown): JwtFailure {
  if (err instanceof errors.JWTExpired) return 'expired'
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'not yet valid'
    if (err.claim === 'iss') return 'wrong issuer'
    if (err.claim === 'aud') return 'wrong audience'
    return 'missing claim'
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JWKSNoMatchingKey) {
    return 'bad signature'
  }
  return 'malformed token'
}
