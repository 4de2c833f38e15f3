// The checks a module must pass before any of its code runs: a valid module.config.ts, an api
// range this host satisfies, permissions named `<id>.<resource>.<action>`, and a plugin.ts that
// agrees with its manifest. Each failure names the rule and the field.
import semver from 'semver'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import { HOST_API_VERSION, MODULE_ID, SERVED_API_VERSIONS, type ModuleDefinition, type ModuleManifest } from '../contract/contract.ts'

const PERMISSION = /^([a-z][a-z0-9-]*)\.([a-z][a-z0-9_-]*)\.([a-z][a-z0-9_-]*)$/

export const ManifestSchema = Type.Object({
  id: Type.String({ pattern: MODULE_ID }),
  name: Type.String({ minLength: 1, maxLength: 100 }),
  version: Type.String({ minLength: 1 }),
  api: Type.String({ minLength: 1 }),
  permissions: Type.Array(Type.String()),
  nav: Type.Optional(
    Type.Object({
      basePath: Type.String({ pattern: '^/' }),
      items: Type.Array(
        Type.Object({
          path: Type.String({ pattern: '^/' }),
          label: Type.String({ minLength: 1 }),
          permissions: Type.Optional(Type.Array(Type.String())),
        }),
      ),
    }),
  ),
})

/** A module that broke a rule: refused before its code runs. */
export class ModuleRefusal extends Error {
  constructor(
    readonly rule: string,
    readonly field: string,
    message: string,
  ) {
    super(message)
    this.name = 'ModuleRefusal'
  }
}

export function checkManifest(manifest: unknown, folderName: string): ModuleManifest {
  if (!Value.Check(ManifestSchema, manifest)) {
    const [first] = Value.Errors(ManifestSchema, manifest)
    const field = first?.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)'
    throw new ModuleRefusal('manifest', field, `module.config.ts: ${field} ${first?.message ?? 'is invalid'}`)
  }
  const m = manifest as ModuleManifest
  if (m.id !== folderName) {
    throw new ModuleRefusal('manifest', 'id', `module.config.ts: id "${m.id}" differs from its folder name "${folderName}"`)
  }
  if (!semver.valid(m.version)) {
    throw new ModuleRefusal('manifest', 'version', `module.config.ts: version "${m.version}" is not a semver version`)
  }
  checkApiRange(m.api)
  for (const permission of m.permissions) {
    const match = PERMISSION.exec(permission)
    if (!match || match[1] !== m.id) {
      throw new ModuleRefusal(
        'permission-name',
        'permissions',
        `permission "${permission}" must be named <module id>.<resource>.<action>, starting with "${m.id}."`,
      )
    }
  }
  for (const item of m.nav?.items ?? []) {
    for (const permission of item.permissions ?? []) {
      if (!m.permissions.includes(permission)) {
        throw new ModuleRefusal('undeclared-permission', 'nav.items.permissions', `nav item "${item.label}" names undeclared permission "${permission}"`)
      }
    }
  }
  return m
}

export function checkApiRange(api: string) {
  const range = semver.validRange(api)
  if (!range || !SERVED_API_VERSIONS.some((version) => semver.satisfies(version, range))) {
    throw new ModuleRefusal('api', 'api', `api "${api}" does not accept this host's API version ${HOST_API_VERSION}`)
  }
}

/** plugin.ts and module.config.ts must say the same about the module. */
export function checkAgreement(definition: unknown, permissions: unknown, manifest: ModuleManifest): ModuleDefinition {
  const def = definition as Partial<ModuleDefinition> | undefined
  if (!def || typeof def !== 'object' || typeof def.register !== 'function' || !def.meta || typeof def.meta !== 'object') {
    throw new ModuleRefusal('plugin', 'default', 'plugin.ts must default-export { meta, register(ctx) }')
  }
  for (const field of ['id', 'version', 'api'] as const) {
    if (def.meta[field] !== manifest[field]) {
      throw new ModuleRefusal(
        'agreement',
        field,
        `plugin.ts and module.config.ts disagree on ${field}: "${def.meta[field]}" vs "${manifest[field]}"`,
      )
    }
  }
  const declared = Array.isArray(permissions) ? [...permissions].sort() : undefined
  if (!declared || JSON.stringify(declared) !== JSON.stringify([...manifest.permissions].sort())) {
    throw new ModuleRefusal('agreement', 'permissions', 'plugin.ts and module.config.ts disagree on permissions')
  }
  return def as ModuleDefinition
}
