// `plinth module new <id> [--dir <folder>]`: a module that loads, serves a CRUD resource and
// passes its own suite as written. In src/plugins by default; in any other folder, that folder
// also gets what it needs to typecheck and test on its own (package.json, tsconfig.json, .npmrc),
// pointing at this plinth.
import fs from 'node:fs'
import path from 'node:path'
import { PROJECT_ROOT } from '../app/paths.ts'
import { MODULE_ID } from '../contract/contract.ts'

export class ScaffoldError extends Error {}

export interface Scaffolded {
  moduleDir: string
  /** Every file written, relative to the folder the module went in. */
  files: string[]
  /** The folder is outside this project: it got a package.json and tsconfig.json (unless it had them). */
  standalone: boolean
}

export function scaffoldModule(id: string, dir: string | undefined): Scaffolded {
  if (!new RegExp(MODULE_ID).test(id)) {
    throw new ScaffoldError(`"${id}" is not a module id: lowercase letters, digits and -, starting with a letter, at most 40 characters`)
  }
  const root = path.resolve(dir ?? path.join(PROJECT_ROOT, 'src/plugins'))
  const moduleDir = path.join(root, id)
  if (fs.existsSync(moduleDir)) throw new ScaffoldError(`${moduleDir} already exists; choose another id or --dir`)
  const standalone = root !== path.join(PROJECT_ROOT, 'src/plugins')
  const files: Record<string, string> = {
    [`${id}/module.config.ts`]: manifestFile(id),
    [`${id}/plugin.ts`]: definitionFile(id),
    [`${id}/migrations/001_${table(id)}.sql`]: migrationFile(id),
    [`${id}/test/${id}.test.ts`]: testFile(id),
  }
  if (standalone) {
    // A repository of modules: written once, kept if there (a second module goes beside the first).
    const extra: Record<string, string> = { 'package.json': packageFile(root), 'tsconfig.json': tsconfigFile(), '.npmrc': 'install-links=false\n', '.gitignore': 'node_modules/\n.tap/\n' }
    for (const [name, text] of Object.entries(extra)) if (!fs.existsSync(path.join(root, name))) files[name] = text
  }
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    fs.writeFileSync(path.join(root, name), text, { flag: 'wx' })
  }
  return { moduleDir, files: Object.keys(files), standalone }
}

const table = (id: string) => `${id.replace(/-/g, '_')}_items`
const title = (id: string) => id.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join(' ')
const permissions = (id: string) => ['read', 'create', 'update', 'delete'].map((action) => `${id}.items.${action}`)

function manifestFile(id: string) {
  return `import { defineManifest } from 'plinth/module'

export default defineManifest({
  id: '${id}',
  name: '${title(id)}',
  version: '0.1.0',
  api: '1.x',
  permissions: [${permissions(id).map((p) => `'${p}'`).join(', ')}],
  nav: {
    basePath: '/app/${id}',
    items: [{ path: '/app/${id}/items', label: '${title(id)}', permissions: ['${id}.items.read'] }],
  },
})
`
}

function definitionFile(id: string) {
  const t = table(id)
  return `// ${title(id)}: items to list, read, create, update and delete, for each tenant in its own schema.
// Written against plinth's module contract (docs/contract.md); plinth/module only adds types.
import { sql } from 'drizzle-orm'
import { defineModule } from 'plinth/module'
import { Type } from 'typebox'

export const permissions = [${permissions(id).map((p) => `'${p}'`).join(', ')}]

const Item = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  notes: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
})
const ItemInput = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), notes: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])) },
  { additionalProperties: false },
)
const ItemPatch = Type.Partial(ItemInput, { additionalProperties: false, minProperties: 1 })
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
})

// No schema name and no tenant_id: the request's search_path is the tenant's schema.
// Timestamps answer as RFC 3339 in UTC (\`2026-12-06T08:44:45.582Z\`), what format: 'date-time' says.
const COLUMNS = sql.raw(\`id, name, notes, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt"\`)
const notFound = () => Object.assign(new Error('No item has this id.'), { status: 404 })

export default defineModule({
  meta: { id: '${id}', name: '${title(id)}', version: '0.1.0', api: '1.x' },
  register(ctx) {
    ctx.router.get(
      '/items',
      { schema: { querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Item) }) } }, summary: 'List items' },
      ctx.rbac.require('${id}.items.read'),
      async (req) => {
        const { rows } = await req.db.execute(sql\`SELECT \${COLUMNS} FROM ${t} ORDER BY created_at, id LIMIT \${req.query.limit} OFFSET \${req.query.offset}\`)
        return { items: rows }
      },
    )

    ctx.router.get('/items/:id', { schema: { params: IdParams, response: { 200: Item } }, summary: 'Get an item' }, ctx.rbac.require('${id}.items.read'), async (req) => {
      const { rows } = await req.db.execute(sql\`SELECT \${COLUMNS} FROM ${t} WHERE id = \${req.params.id}\`)
      if (rows.length === 0) throw notFound()
      return rows[0]
    })

    ctx.router.post(
      '/items',
      { schema: { body: ItemInput, response: { 201: Item } }, summary: 'Create an item' },
      ctx.rbac.require('${id}.items.create'),
      async (req, res) => {
        const { rows } = await req.db.execute(sql\`INSERT INTO ${t} (name, notes) VALUES (\${req.body.name}, \${req.body.notes ?? null}) RETURNING \${COLUMNS}\`)
        ctx.log('item created', { itemId: rows[0].id })
        res.status(201).json(rows[0])
      },
    )

    ctx.router.patch(
      '/items/:id',
      { schema: { params: IdParams, body: ItemPatch, response: { 200: Item } }, summary: 'Update an item' },
      ctx.rbac.require('${id}.items.update'),
      async (req) => {
        const { name, notes } = req.body
        const { rows } = await req.db.execute(sql\`UPDATE ${t}
            SET name = COALESCE(\${name ?? null}, name),
                notes = CASE WHEN \${notes !== undefined} THEN \${notes ?? null} ELSE notes END
          WHERE id = \${req.params.id} RETURNING \${COLUMNS}\`)
        if (rows.length === 0) throw notFound()
        return rows[0]
      },
    )

    ctx.router.delete('/items/:id', { schema: { params: IdParams, response: { 204: Type.Null({ description: 'Deleted' }) } }, summary: 'Delete an item' }, ctx.rbac.require('${id}.items.delete'), async (req, res) => {
      const { rows } = await req.db.execute(sql\`DELETE FROM ${t} WHERE id = \${req.params.id} RETURNING id\`)
      if (rows.length === 0) throw notFound()
      res.status(204).end()
    })
  },
})
`
}

function migrationFile(id: string) {
  return `-- ${title(id)}'s items. Runs inside each tenant's schema: no schema name, no tenant_id.
-- Never edit this file once applied anywhere: add 002_....sql instead.
CREATE TABLE ${table(id)} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  notes text,
  created_at timestamptz NOT NULL DEFAULT now()
);
`
}

function testFile(id: string) {
  const [read, create, update, remove] = permissions(id)
  return `// ${title(id)}'s own suite: a host with this module alone, on a fresh database (embedded, or
// DATABASE_URL's server), real HTTP, callers holding exactly the permissions each test names.
import t from 'tap'
import { expectStatus, startModuleHost } from 'plinth/testing'

const h = await startModuleHost(t, { tenants: ['acme', 'beta'] })
const editor = await h.client({ tenant: 'acme', permissions: ['${read}', '${create}', '${update}', '${remove}'] })

t.test('create, read, update, list, delete', async (t) => {
  const created = await editor.post('/items', { name: 'First', notes: 'from the scaffold' })
  expectStatus(t, created, 201)
  const { id } = created.json()
  t.match(created.json(), { id: String, name: 'First', notes: 'from the scaffold', createdAt: /^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$/ })
  expectStatus(t, await editor.get(\`/items/\${id}\`), 200)
  const updated = await editor.patch(\`/items/\${id}\`, { name: 'Renamed' })
  expectStatus(t, updated, 200)
  t.match(updated.json(), { name: 'Renamed', notes: 'from the scaffold' })
  t.match((await editor.get('/items')).json(), { items: [{ id, name: 'Renamed' }] })
  expectStatus(t, await editor.delete(\`/items/\${id}\`), 204)
  expectStatus(t, await editor.get(\`/items/\${id}\`), 404)
})

t.test('bad input is a 400 naming the field, and writes nothing', async (t) => {
  const res = await editor.post('/items', { name: '' })
  expectStatus(t, res, 400)
  t.match(res.json(), { error: 'VALIDATION_FAILED', errors: [{ path: '/name' }] })
  t.same((await editor.get('/items')).json(), { items: [] })
})

t.test('deny by default: no credential is 401, a missing permission 403', async (t) => {
  const anonymous = await h.client({ tenant: 'acme' })
  expectStatus(t, await anonymous.get('/items'), 401)
  const reader = await h.client({ tenant: 'acme', permissions: ['${read}'] })
  expectStatus(t, await reader.get('/items'), 200)
  expectStatus(t, await reader.post('/items', { name: 'x' }), 403)
})

t.test("a tenant never sees another's items", async (t) => {
  expectStatus(t, await editor.post('/items', { name: 'Acme only' }), 201)
  const beta = await h.client({ tenant: 'beta', permissions: ['${read}'] })
  t.same((await beta.get('/items')).json(), { items: [] })
})
`
}

/** The package.json of a folder of modules kept outside plinth: its tests and types use this plinth. */
function packageFile(root: string) {
  const host = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'))
  const version = (name: string) => host.dependencies?.[name] ?? host.devDependencies?.[name]
  const hostLink = (path.relative(root, PROJECT_ROOT) || '.').split(path.sep).join('/')
  const pkg = {
    name: path.basename(root).toLowerCase().replace(/[^a-z0-9-]/g, '-'),
    private: true,
    type: 'module',
    // tap is built once for the plugins below (tsx in place of ts-node), as the install ends.
    scripts: { test: 'tap', typecheck: 'tsc --noEmit', prepare: 'tap build' },
    // plinth is linked (.npmrc: install-links=false), and so are typebox and drizzle-orm: the host's
    // own copies, the ones a module runs against, so tsc sees one Drizzle and one TypeBox.
    devDependencies: {
      plinth: `file:${hostLink}`,
      '@types/node': version('@types/node'),
      'drizzle-orm': `file:${hostLink}/node_modules/drizzle-orm`,
      typebox: `file:${hostLink}/node_modules/typebox`,
      tap: version('tap'),
      tsx: version('tsx'),
      typescript: version('typescript'),
    },
    tap: {
      plugin: ['!@tapjs/typescript'],
      // plinth/drizzle-imports: drizzle-orm loads without Node 22 and 24's package lookup per file
      // (0.4 s and 230 MB a test process; src/platform/drizzle-imports.ts).
      'node-arg': ['--import=tsx', '--import=plinth/drizzle-imports'],
      timeout: 120,
      'disable-coverage': true,
      'allow-incomplete-coverage': true,
      include: ['*/test/**/*.test.ts'],
    },
  }
  return JSON.stringify(pkg, null, 2) + '\n'
}

function tsconfigFile() {
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
      types: ['node'],
    },
    include: ['*/**/*.ts'],
    exclude: ['node_modules'],
  }
  return JSON.stringify(config, null, 2) + '\n'
}
