#!/usr/bin/env node
// The `plinth` command. It runs the code as it is now: dist/ when `npm run build` made it from the
// src/ that is there now (dist/.source-stamp, scripts/source-stamp.js), else src/ through tsx, as
// `npm run dev` does. A built deployment answers without compiling TypeScript on every command.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceStamp } from '../scripts/source-stamp.js'

// V8 flags some commands need. They cannot be set once the process runs, so the command runs
// itself once more with them (about 40 ms; 0.1 s on a slow machine):
// - On the embedded database (no DATABASE_URL), a command runs PostgreSQL compiled to WebAssembly.
//   V8 optimises the hot parts of it on background threads, which a short command pays for and
//   never uses; on Node 24 a process cannot even exit until those compilations end (over a second
//   at the end of every command). The baseline compiler alone (--liftoff-only) is what a command
//   needs: `tenant list` 2.7 -> 1.4 s on Node 24, 1.48 -> 1.28 s on Node 20 (respawn included).
// - An archive (tenant export, import, clone) streams the tenant's rows through short-lived
//   Buffers, which are freed only as V8 collects their young generation. Node 24 lets that grow to
//   tens of megabytes, and a 1 GB export peaked at 165 MB of RSS; held to 2 MB semi-spaces it peaks
//   at about 115 MB and runs faster (docs/benchmarks.md).
const major = Number(process.versions.node.split('.')[0])
const [group, command] = process.argv.slice(2).filter((arg) => !arg.startsWith('-'))
const flags = []
if (!process.env.DATABASE_URL) flags.push('--liftoff-only')
if (major >= 24 && group === 'tenant' && ['export', 'import', 'clone'].includes(command)) flags.push('--max-semi-space-size=2')
const missing = flags.filter((flag) => !process.execArgv.includes(flag))
if (missing.length > 0) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  if (child.signal) process.kill(process.pid, child.signal)
  process.exit(child.status ?? 1)
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const stampFile = path.join(root, 'dist/.source-stamp')
const built = fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === sourceStamp(root)
// drizzle-imports first: the imports made after it go through its module hook (its header says why).
if (built) {
  await import('../dist/platform/drizzle-imports.js')
  await import('../dist/cli/main.js')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/platform/drizzle-imports.ts')
  await import('../src/cli/main.ts')
}
