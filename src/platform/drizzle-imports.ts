// Imported for its effect, first thing in every plinth process (bin/plinth.js, main.ts, tap's
// node-arg): drizzle-orm's imports of its own files are resolved here, without Node's package lookup.
//
// Why: for each ES module file it loads, Node 22 and 24 look up the file's package scope, and that
// lookup parses the package's whole "exports" map again (package_json_reader's getPackageScopeConfig
// spreads an object whose `exports` is a lazy getter). drizzle-orm's package.json is 178 KB, and
// the host loads about a hundred of its files: on Node 24.22 that is 0.4 s of CPU and some 230 MB
// of garbage in every process, the CLI's one-second commands included (docs/benchmarks.md).
//
// What: a relative specifier ending in `.js`, imported by a file of drizzle-orm, is the file it
// names, an ES module (drizzle-orm's package.json says "type": "module" and no folder of it has a
// package.json of its own). Every other specifier goes on to Node as before. Node 20 has no
// registerHooks and does not pay this cost; it is left as it is.
import { registerHooks } from './register-hooks.ts'

const DRIZZLE_FILE = '/node_modules/drizzle-orm/'

if (registerHooks) {
  registerHooks({
    resolve(specifier, context, next) {
      const parent = context.parentURL
      if (parent !== undefined && parent.includes(DRIZZLE_FILE) && (specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js')) {
        return { url: new URL(specifier, parent).href, format: 'module', shortCircuit: true }
      }
      return next(specifier, context)
    },
  })
}
