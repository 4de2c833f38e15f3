#!/usr/bin/env node
// npm run test:module -- <id> [<id>...]: one module's tap suites alone, whether the module is in
// src/plugins or in a PLINTH_MODULE_DIRS folder (set in the environment or in .env).
// - A folder of modules with its own package.json (what `plinth module new --dir` writes) is its
//   own tap project: its suites run there, as `npx tap` would run them.
// - Otherwise they run in this project, and a module folder with no node_modules gets plinth/testing,
//   typebox and drizzle-orm from this host (src/testing/contract-resolution.ts).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { moduleDirs } from './settings.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

if (process.env.npm_lifecycle_event === 'test:plugin') console.error('plinth: npm run test:plugin is deprecated: name it npm run test:module')
const ids = process.argv.slice(2)
if (ids.length === 0) {
  console.error('usage: npm run test:module -- <module id> [...]')
  process.exit(2)
}
const roots = [path.join(root, 'src/plugins'), ...moduleDirs]
/** Files to run, by the folder tap runs them from. */
const runs = new Map()
for (const id of ids) {
  const moduleRoot = roots.find((r) => fs.existsSync(path.join(r, id, 'test')))
  if (!moduleRoot) {
    console.error(`no test folder for module ${id} (looked in ${roots.map((r) => path.join(r, id, 'test')).join(', ')})`)
    process.exit(2)
  }
  let dir = path.join(moduleRoot, id, 'test')
  const project = moduleRoot !== roots[0] && fs.existsSync(path.join(moduleRoot, 'package.json')) ? moduleRoot : root
  if (project === root && moduleRoot !== roots[0]) {
    // tap keeps each file's results under .tap/test-results/<its path>: a path out of this project
    // would write beside it. The module is reached through a link inside .tap instead.
    const link = path.join(root, '.tap', 'modules', id)
    fs.mkdirSync(path.dirname(link), { recursive: true })
    fs.rmSync(link, { force: true })
    fs.symlinkSync(path.join(moduleRoot, id), link)
    dir = path.join(link, 'test')
  }
  const files = runs.get(project) ?? []
  for (const f of fs.readdirSync(dir, { recursive: true })) if (String(f).endsWith('.test.ts')) files.push(path.relative(project, path.join(dir, String(f))))
  runs.set(project, files)
}
// A module project of its own runs its own tap: without its dependencies installed, npx would
// stop at "canceled due to missing packages" (or fetch tap anew), which says nothing of the fix.
for (const project of runs.keys()) {
  if (project !== root && !fs.existsSync(path.join(project, 'node_modules', 'tap'))) {
    console.error(`plinth: the module project in ${project} has no dependencies installed: run \`npm install\` in ${project} first`)
    process.exit(2)
  }
}
let status = 0
for (const [project, files] of runs) {
  const args = project === root ? ['tap', `--node-arg=--import=${pathToFileURL(path.join(root, 'scripts/contract-resolution.js'))}`, ...files] : ['tap', ...files]
  const result = spawnSync('npx', args, { stdio: 'inherit', cwd: project })
  status ||= result.status ?? 1
}
process.exit(status)
