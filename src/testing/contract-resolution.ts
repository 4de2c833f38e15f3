// Imported by scripts/contract-resolution.js (node --import), for test files in a
// PLINTH_PLUGIN_DIRS folder with no node_modules of its own: they import `plinth/testing`, typebox,
// drizzle-orm and `tap` from this host, as the module's own files take the contract's packages
// from it when the host loads them (host/modules/resolution-hooks.ts).
import { pluginDirsFrom } from '../host/config.ts'
import { registerResolutionHooks } from '../host/modules/loader.ts'

registerResolutionHooks(
  pluginDirsFrom(process.env.PLINTH_PLUGIN_DIRS),
  ['tap'],
)
