// JWT verification for each kind of configured key: what verifies, and what never does.
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { JwtVerifier } from '../src/access/jwt.ts'

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-jwt-'))
t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
const token = (alg: string, key: any, claims: Record<string, unknown> = { tenant: 'acme' }, kid?: string) =>
  new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject('alice').setExpirationTime('5m').sign(key)

t.test('HS256 with a shared secret', async (t) => {
  const secret = 'a-shared-secret-of-at-least-32-characters'
  const verifier = await JwtVerifier.create({ secret })
  t.same(await verifier.verify(await token('HS256', new TextEncoder().encode(secret))), { subject: 'alice', tenantCode: 'acme' })
  t.same(await verifier.verify(await token('HS256', new TextEncoder().encode('another-secret-of-at-least-32-chars!'))), { reason: 'bad signature' })
  const rsa = await generateKeyPair('RS256')
  t.same(await verifier.verify(await token('RS256', rsa.privateKey)), { reason: 'bad signature' }, 'an RS256 token is not accepted where HS256 is pinned')
  t.same(await verifier.verify(await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(new TextEncoder().encode(secret))), { reason: 'missing claim' }, 'exp is required')
})

t.test('ES256 with a PEM public key', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const file = path.join(dir, 'es.pem')
  await fs.writeFile(file, await exportSPKI(publicKey as any))
  const verifier = await JwtVerifier.create({ publicKeyFile: file })
  t.same(await verifier.verify(await token('ES256', privateKey)), { subject: 'alice', tenantCode: 'acme' })
  t.same(await verifier.verify(await token('ES256', privateKey, {})), { reason: 'missing claim' }, 'the tenant claim is required')
})

t.test('a JWKS file, keys chosen by kid', async (t) => {
  const one = await generateKeyPair('RS256', { extractable: true })
  const two = await generateKeyPair('ES256', { extractable: true })
  const file = path.join(dir, 'jwks.json')
  await fs.writeFile(file, JSON.stringify({ keys: [{ ...(await exportJWK(one.publicKey)), kid: 'one', alg: 'RS256' }, { ...(await exportJWK(two.publicKey)), kid: 'two', alg: 'ES256' }] }))
  const verifier = await JwtVerifier.create({ jwksFile: file })
  t.same(await verifier.verify(await token('RS256', one.privateKey, { tenant: 'acme' }, 'one')), { subject: 'alice', tenantCode: 'acme' })
  t.same(await verifier.verify(await token('ES256', two.privateKey, { tenant: 'beta' }, 'two')), { subject: 'alice', tenantCode: 'beta' })
  const stranger = await generateKeyPair('RS256')
  t.same(await verifier.verify(await token('RS256', stranger.privateKey, { tenant: 'acme' }, 'one')), { reason: 'bad signature' })
})

t.test('with no key configured, no JWT verifies', async (t) => {
  const verifier = await JwtVerifier.create({})
  const { privateKey } = await generateKeyPair('RS256')
  t.same(await verifier.verify(await token('RS256', privateKey)), { reason: 'jwt not configured' })
})

t.test('a public key file of another kind is refused at start, saying which kinds are accepted', async (t) => {
  const { publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  const file = path.join(dir, 'ed.pem')
  await fs.writeFile(file, await exportSPKI(publicKey as any))
  await t.rejects(JwtVerifier.create({ publicKeyFile: file }), { message: 'PLINTH_JWT_PUBLIC_KEY_FILE must hold an RSA or P-256 EC public key' })
})

t.test('what is a JWT at all: three base64url parts, nothing around them', async (t) => {
  t.ok(JwtVerifier.looksLikeJwt('aaa.bbb.ccc'))
  t.ok(JwtVerifier.looksLikeJwt('aaa.bbb.'), 'an empty signature part still has the shape')
  t.notOk(JwtVerifier.looksLikeJwt('aaa.bbb.ccc!'))
  t.notOk(JwtVerifier.looksLikeJwt('!aaa.bbb.ccc'))
  t.notOk(JwtVerifier.looksLikeJwt('aaa.bbb'))
  const verifier = await JwtVerifier.create({ secret: 'a-shared-secret-of-at-least-32-characters' })
  t.same(await verifier.verify('aaa.bbb.ccc'), { reason: 'malformed token' }, 'the shape, but not a token')
})
