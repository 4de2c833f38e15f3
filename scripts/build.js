// `npm run build`: compiles src/ to dist/ (tsc) and copies the built-in modules' SQL migrations
// beside their compiled code. dist/ is rebuilt from nothing, so a deleted module never lingers.
// `--if-stale` (npm test's pretest) builds only when dist/ was not built from src/ as it is now.
// Builds take the dist.lock folder (scripts/lock.js), so two `npm test`s starting at once build once.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { withLock } from './lock.js'
import { sourceStamp } from './source-stamp.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = path.join(root, 'dist')
const stampFile = path.join(dist, '.source-stamp')
const ifStale = process.argv.includes('--if-stale')
const current = (stamp) => fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp

if (!(ifStale && current(sourceStamp(root)))) {
  await withLock(path.join(root, 'dist.lock'), () => {
    // Read under the lock: another process may have just built it.
    const stamp = sourceStamp(root)
    if (ifStale && current(stamp)) return
    fs.rmSync(dist, { recursive: true, force: true })
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
    for (const id of fs.readdirSync(path.join(root, 'src/plugins'))) {
      const migrations = path.join(root, 'src/plugins', id, 'migrations')
      if (fs.existsSync(migrations)) fs.cpSync(migrations, path.join(dist, 'plugins', id, 'migrations'), { recursive: true })
    }
    // Last: a build that failed part way leaves no stamp, so nothing runs it as current.
    fs.writeFileSync(stampFile, stamp)
  })
}
