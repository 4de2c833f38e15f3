// /api/admin/tenants: one tenant out and back in (`plinth tenant export|import|clone`, over HTTP).
// An export is streamed as it is read; an import's body is saved to a temporary file as it
// arrives (the archive is read twice: checked whole, then loaded), never held in memory.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { PassThrough, type Readable } from 'node:stream'
import { Type } from 'typebox'
import type { Host } from '../../app/host.ts'
import { TenantArchives } from '../../app/tenant-archives.ts'
import { TenantCode } from './params.ts'
import { TenantView } from './tenants.ts'

/** The media type of a tenant archive (tenancy/archive/format.ts). */
export const ARCHIVE_MEDIA_TYPE = 'application/vnd.plinth.tenant-archive'

const Imported = Type.Object({
  tenant: TenantView,
  from: Type.String(),
  replaced: Type.Boolean(),
  tables: Type.Integer(),
  rows: Type.Integer(),
  keys: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), key: Type.String() }), {
    description: "Keys re-issued from the archive's (exported with access): their secrets, shown this once.",
  }),
})

const Naming = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  domain: Type.Optional(Type.String({ maxLength: 253 })),
}

export async function adminArchiveRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']
  const archives = new TenantArchives(host)
  // An archive's body is passed on as a stream, unread: the import saves it to a file.
  app.addContentTypeParser([ARCHIVE_MEDIA_TYPE, 'application/octet-stream'], (_request, payload, done) => done(null, payload))

  app.post(
    '/:code/export',
    {
      schema: {
        tags,
        description:
          "The tenant's archive, streamed (tenancy/archive/format.ts): its tables' rows and a manifest with each table's SHA-256. " +
          "withAccess: its roles, grants and keys' names too (never a secret).",
        params: Type.Object({ code: TenantCode }),
        querystring: Type.Object({ withAccess: Type.Optional(Type.Boolean()) }),
      },
    },
    async (request, reply) => {
      const { code } = request.params
      const body = new PassThrough()
      let started!: () => void
      const begun = new Promise<void>((resolve) => (started = resolve))
      const exported = archives.export(code, body, { withAccess: request.query.withAccess ?? false, onStart: started })
      // Until the first byte, a failure (no such tenant, a foreign key out of its schema) is an error answer.
      await Promise.race([begun, exported])
      exported.then(
        () => body.end(),
        (err) => {
          request.log.error({ err, tenant: code }, 'tenant export failed while streaming; the archive sent is cut short (it has no manifest: an import refuses it)')
          body.destroy(err)
        },
      )
      return reply
        .type(ARCHIVE_MEDIA_TYPE)
        .header('content-disposition', `attachment; filename="${code}.plinth-archive"`)
        .send(body)
    },
  )

  app.post(
    '/import',
    {
      schema: {
        tags,
        description:
          `A tenant from an archive (body: ${ARCHIVE_MEDIA_TYPE} or application/octet-stream), under the code \`as\`. ` +
          'replace: swap out the tenant of that code once the import is ready. An archive that fails its checks creates nothing.',
        querystring: Type.Object({ as: TenantCode, replace: Type.Optional(Type.Boolean()), ...Naming }),
        response: { 201: Imported },
      },
    },
    async (request, reply) => {
      const { as, replace, name, domain } = request.query
      return reply.code(201).send(await archives.importStream(request.body as Readable, { as, replace, name, domain }))
    },
  )

  app.post(
    '/:code/clone',
    {
      schema: {
        tags,
        description: 'A copy of the tenant under another code: its export piped into an import.',
        params: Type.Object({ code: TenantCode }),
        body: Type.Object({ as: TenantCode, withAccess: Type.Optional(Type.Boolean()), ...Naming }, { additionalProperties: false }),
        response: { 201: Imported },
      },
    },
    async (request, reply) => reply.code(201).send(await archives.clone(request.params.code, request.body)),
  )
}
