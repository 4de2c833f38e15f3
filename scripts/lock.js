// One process at a time for a step that writes files every `npm test` shares (dist/, tap's build
// for our plugin set), when several start at once in one checkout (two terminals, say).
// The lock is a folder, taken by mkdir, with its holder's pid inside: a folder whose holder is
// no longer running was left by a process that died, and is taken over.
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** Runs `work` holding the lock folder `dir`; waits while another live process holds it. */
export async function withLock(dir, work) {
  for (;;) {
    try {
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid))
      break
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      if (!holderAlive(dir)) fs.rmSync(dir, { recursive: true, force: true })
      else await sleep(100)
    }
  }
  try {
    return await work()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function holderAlive(dir) {
  let pid
  try {
    pid = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'))
  } catch {
    // Taken a moment ago and its pid not written yet, or being removed: wait and look again,
    // unless it has stayed so for a while (its holder died between the two steps).
    const stat = fs.statSync(dir, { throwIfNoEntry: false })
    return stat !== undefined && Date.now() - stat.mtimeMs < 10_000
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}
