// Where plinth's own files are, from src/ (run through tsx) or dist/ (built): one level below the
// project root either way.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
/** The built-in modules: src/plugins when run from source, dist/plugins when built. */
export const BUILTIN_MODULES_DIR = fileURLToPath(new URL('../plugins', import.meta.url))
/** The host's own migrations (SQL, never compiled): public/ once per database, tenant/ per tenant. */
export const HOST_MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'migrations')
