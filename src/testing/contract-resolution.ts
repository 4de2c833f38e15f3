// Imported by scripts/contract-resolution.js (node --import), for test files in a
// PLINTH_MODULE_DIRS folder with no node_modules of its own: they import `plinth/testing`, typebox,
// drizzle-orm and `tap` from this host, as the module's own files take the contract's packages
// from it when the host loads them (host/modules/resolution-hooks.ts).
import { envValue, moduleDirsFrom } from '../app/config.ts'
import { registerResolutionHooks } from '../modules/discovery.ts'

registerResolutionHooks(
  moduleDirsFrom(envValue(process.env, 'PLINTH_MODULE_DIRS')),
  ['tap'],
)
