import type { LightMyRequestResponse } from 'fastify'

type Tap = { equal: Function; match: Function; ok: Function; same: Function }

/** Checks the one error shape of contract.md and returns the body. */
export function assertProblem(t: Tap, res: LightMyRequestResponse, status: number, code: string) {
  t.equal(res.statusCode, status, `status ${status}`)
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  const body = res.json()
  t.match(body, {
    type: `urn:plinth:error:${code}`,
    title: String,
    status,
    detail: String,
    instance: String,
    error: code,
    requestId: res.headers['x-request-id'],
  })
  t.same(
    Object.keys(body).filter((k) => !['type', 'title', 'status', 'detail', 'instance', 'error', 'requestId', 'errors'].includes(k)),
    [],
    'no field beyond the shape',
  )
  return body
}
