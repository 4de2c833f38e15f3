// `npm run build` once per change of src/, however many test files (in parallel processes) need
// the built host: a lock folder keeps two builds from writing dist/ at once, and a stamp of the
// sources it was built from lets the others skip it.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PROJECT_ROOT } from '../../src/host/host.ts'
import { finished, type Finished } from './process.ts'

const LOCK = path.join(PROJECT_ROOT, 'dist.lock')
const STAMP = path.join(PROJECT_ROOT, 'dist', '.sources')

async function sourcesStamp(): Promise<string> {
  const hash = createHash('sha256')
  for (const file of (await fs.readdir(path.join(PROJECT_ROOT, 'src'), { recursive: true })).sort()) {
    const stat = await fs.stat(path.join(PROJECT_ROOT, 'src', file))
    if (stat.isFile()) hash.update(`${file} ${stat.size} ${stat.mtimeMs}\n`)
  }
  return hash.digest('hex')
}

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
    const stamp = await sourcesStamp()
    if ((await fs.readFile(STAMP, 'utf8').catch(() => '')) === stamp) return { code: 0, signal: null, stdout: '', stderr: '' }
    const result = await finished(spawn(process.execPath, ['scripts/build.js'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
    if (result.code === 0) await fs.writeFile(STAMP, stamp)
    return result
  } finally {
    await fs.rm(LOCK, { recursive: true, force: true })
  }
}
