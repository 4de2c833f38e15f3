import { register } from 'tsx/esm/api'
const t0=performance.now()
register()
console.log('tsx', (performance.now()-t0).toFixed(0))
for (const m of ['pg','/work/main/src/host/env-file.ts','/work/main/src/host/config.ts','/work/main/src/problems.ts','/work/main/src/host/logger.ts','/work/main/src/tenancy/database.ts','/work/main/src/tenancy/migrations.ts','/work/main/src/tenancy/registry.ts','/work/main/src/host/modules/discovery.ts','/work/main/src/rbac/api-keys.ts','/work/main/src/rbac/roles.ts','/work/main/src/cli/reads.ts','/work/main/src/cli/scaffold.ts']) {
  const a=performance.now(); await import(m); console.log(m.replace('/work/main/src/',''), (performance.now()-a).toFixed(0))
}
