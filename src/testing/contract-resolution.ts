// Imported by scripts/contract-resolution.js (node --import): a module's test files, in a PLINTH_PLUGIN_DIRS folder with no
// node_modules of its own, import `plinth/testing` (and typebox, drizzle-orm) from this host, as the
// module's own files do when the host loads them (host/modules/resolution-hooks.ts).
import path from 'node:path'
import { registerResolutionHooks } from '../host/modules/loader.ts'

registerResolutionHooks((process.env.PLINTH_PLUGIN_DIRS ?? '').split(',').map((d) => d.trim()).filter(Boolean).map((d) => path.resolve(d)))
