#!/usr/bin/env node
// The `plinth` command. It runs the code as it is now: dist/ when `npm run build` made it from the
// src/ that is there now (dist/.source-stamp, scripts/source-stamp.js), else src/ through tsx, as
// `npm run dev` does. A built deployment answers without compiling TypeScript on every command.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceStamp } from '../scripts/source-stamp.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const stampFile = path.join(root, 'dist/.source-stamp')
const built = fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === sourceStamp(root)
if (built) await import('../dist/cli/main.js')
else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/cli/main.ts')
}
