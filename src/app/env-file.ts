// The host and the CLI read the same settings: the environment, then `.env` in the working folder
// for what the environment does not set (Node's own parser, process.loadEnvFile). PLINTH_ENV_FILE
// names another file, or `none` for no file at all.
import fs from 'node:fs'
import path from 'node:path'

/** Loads the env file into process.env, never over a variable already set; returns its path, if one was read. */
export function loadEnvFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const name = env.PLINTH_ENV_FILE || '.env'
  if (name === 'none') return undefined
  const file = path.resolve(name)
  if (!fs.existsSync(file)) {
    if (env.PLINTH_ENV_FILE) throw new Error(`PLINTH_ENV_FILE names ${file}, which does not exist`)
    return undefined
  }
  process.loadEnvFile(file)
  return file
}
