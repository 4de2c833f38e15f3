// `npm run build` once per change of src/, however many test files (in parallel processes) need
// the built host: a lock folder keeps two builds from writing dist/ at once, and the stamp of the
// sources it was built from (scripts/source-stamp.js) lets the others skip it.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PROJECT_ROOT } from '../../src/app/paths.ts'
import { sourceStamp } from '../../scripts/source-stamp.js'
import { finished, type Finished } from './process.ts'

const LOCK = path.join(PROJECT_ROOT, 'dist.lock')
/** Written by scripts/build.js as it finishes; bin/plinth.js reads the same. */
const STAMP = path.join(PROJECT_ROOT, 'dist', '.source-stamp')

/** Builds dist/ unless it was built from the sources as they are; resolves with the build's result. */
export async function buildOnce(): Promise<Finished> {
  for (let waited = 0; ; waited += 100) {
    try {
      await fs.mkdir(LOCK)
      break
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      // A lock older than two minutes belongs to a test run that died.
      if (waited > 120_000) await fs.rm(LOCK, { recursive: true, force: true })
      await sleep(100)
    }
  }
  try {
    if ((await fs.readFile(STAMP, 'utf8').catch(() => '')) === sourceStamp(PROJECT_ROOT)) return { code: 0, signal: null, stdout: '', stderr: '' }
    return await finished(spawn(process.execPath, ['scripts/build.js'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
  } finally {
    await fs.rm(LOCK, { recursive: true, force: true })
  }
}
