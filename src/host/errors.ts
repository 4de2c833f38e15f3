// The one error shape plinth sends (RFC 9457 fields plus a stable code), and the errors
// plinth's own code throws. Anything thrown that is not an HttpProblem and carries no 4xx
// status is a 500 whose message never leaves the process.
import { STATUS_CODES } from 'node:http'

export interface FieldError {
  path: string
  message: string
}

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  error: string
  requestId: string
  errors?: FieldError[]
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** An error meant for the caller: its code and detail are sent as they are. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly options: { headers?: Record<string, string>; errors?: FieldError[]; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause })
    this.name = 'HttpProblem'
  }
}

export function problemBody(
  status: number,
  code: string,
  detail: string,
  request: { id: string; url: string },
  errors?: FieldError[],
): ProblemBody {
  const body: ProblemBody = {
    type: `urn:plinth:error:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: request.url.split('?')[0],
    error: code,
    requestId: request.id,
  }
  if (errors) body.errors = errors
  return body
}

// The errors several parts of plinth raise, named once so every caller says the same thing.
export const problems = {
  tenantRequired: () =>
    new HttpProblem(400, 'TENANT_REQUIRED', "This route needs a tenant: send its code in the x-tenant header, or call the tenant's own domain."),
  tenantNotFound: () => new HttpProblem(404, 'TENANT_NOT_FOUND', 'No tenant matches this request.'),
  tenantSuspended: () => new HttpProblem(403, 'TENANT_SUSPENDED', 'This tenant is suspended.'),
  tenantMismatch: () =>
    new HttpProblem(403, 'TENANT_MISMATCH', 'The tenant named by this request is not the tenant of its credential.'),
  dbUnavailable: (cause?: unknown) =>
    new HttpProblem(503, 'DB_UNAVAILABLE', 'The database is busy or unreachable; try again shortly.', {
      headers: { 'retry-after': '1' },
      cause,
    }),
  unauthorized: () =>
    new HttpProblem(401, 'UNAUTHORIZED', 'A valid credential is required.', { headers: { 'www-authenticate': 'Bearer' } }),
  internal: () =>
    new HttpProblem(500, 'INTERNAL_ERROR', 'Something went wrong on our side; the request id identifies it in our logs.'),
  forbidden: (detail = 'The credential does not grant this.') => new HttpProblem(403, 'FORBIDDEN', detail),
}
