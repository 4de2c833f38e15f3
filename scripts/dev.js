#!/usr/bin/env node
// `npm run dev`: the host from src/ through tsx, restarted when a .ts, .js or .sql file changes in
// src/ or in any PLINTH_MODULE_DIRS folder (set in the environment or in .env): a new migration
// is applied by the restart, as it would be by a deploy.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { moduleDirs } from './settings.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const folders = [path.join(root, 'src'), ...moduleDirs]
const watched = folders.flatMap((dir) => ['--include', `${dir}/**/*.{ts,js,mjs,sql}`])
const tsx = path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/cli.mjs')
const child = spawn(
  process.execPath,
  [tsx, 'watch', '--clear-screen=false', ...watched, '--exclude', '**/node_modules/**', path.join(root, 'src/main.ts')],
  { stdio: 'inherit', env: { LOG_PRETTY: '1', ...process.env } },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
