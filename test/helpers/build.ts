// `npm run build` once per change of src/, however many test files (in parallel processes) need
// the built host: the stamp of the sources dist/ was built from (scripts/source-stamp.js) lets
// them skip it, and scripts/build.js --if-stale builds under a lock folder, so two never write
// dist/ at once.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { PROJECT_ROOT } from '../../src/app/paths.ts'
import { sourceStamp } from '../../scripts/source-stamp.js'
import { finished, type Finished } from './process.ts'

/** Written by scripts/build.js as it finishes; bin/plinth.js reads the same. */
const STAMP = path.join(PROJECT_ROOT, 'dist', '.source-stamp')

/** Builds dist/ unless it was built from the sources as they are; resolves with the build's result. */
export async function buildOnce(): Promise<Finished> {
  if ((await fs.readFile(STAMP, 'utf8').catch(() => '')) === sourceStamp(PROJECT_ROOT)) return { code: 0, signal: null, stdout: '', stderr: '' }
  return finished(spawn(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
}
