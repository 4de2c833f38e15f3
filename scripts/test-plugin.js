#!/usr/bin/env node
// npm run test:plugin -- <id> [<id>...]: one module's tap suites alone.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const ids = process.argv.slice(2)
if (ids.length === 0) {
  console.error('usage: npm run test:plugin -- <module id> [...]')
  process.exit(2)
}
const files = []
for (const id of ids) {
  const dir = ['src/plugins', ...(process.env.PLINTH_PLUGIN_DIRS ?? '').split(',').filter(Boolean)]
    .map((root) => path.join(root, id, 'test'))
    .find((d) => fs.existsSync(d))
  if (!dir) {
    console.error(`no test folder for module ${id}`)
    process.exit(2)
  }
  for (const f of fs.readdirSync(dir, { recursive: true })) if (String(f).endsWith('.test.ts')) files.push(path.join(dir, String(f)))
}
const result = spawnSync('npx', ['tap', ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
