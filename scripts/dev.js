#!/usr/bin/env node
// `npm run dev`: the host from src/ through tsx, restarted when a .ts, .js or .sql file changes in
// src/ or in any PLINTH_PLUGIN_DIRS folder (set in the environment or in .env): a new migration
// is applied by the restart, as it would be by a deploy.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const envFile = process.env.PLINTH_ENV_FILE || '.env'
if (envFile !== 'none' && fs.existsSync(envFile)) process.loadEnvFile(envFile)

const folders = [path.join(root, 'src'), ...(process.env.PLINTH_PLUGIN_DIRS ?? '').split(',').map((d) => d.trim()).filter(Boolean).map((d) => path.resolve(d))]
const watched = folders.flatMap((dir) => ['--include', `${dir}/**/*.{ts,js,mjs,sql}`])
const tsx = path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/cli.mjs')
const child = spawn(
  process.execPath,
  [tsx, 'watch', '--clear-screen=false', ...watched, '--exclude', '**/node_modules/**', path.join(root, 'src/main.ts')],
  { stdio: 'inherit', env: { LOG_PRETTY: '1', ...process.env } },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
