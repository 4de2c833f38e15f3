// Who is calling. Authentication sets it; rbac.require reads it. Null means no credential.

export interface Principal {
  id: string
  kind: 'key' | 'user' | 'admin'
  /** The tenant the credential belongs to; null only for the platform admin. */
  tenantId: string | null
  permissions: ReadonlySet<string>
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null
  }
}
