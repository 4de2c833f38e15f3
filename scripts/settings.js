// The settings plinth's scripts read, read as the host reads them (src/app/env-file.ts,
// src/app/config.ts): the environment, then `.env` for what it does not set; the module folders
// under their name or its deprecated one.
import { register } from 'tsx/esm/api'

register()
const { loadEnvFile } = await import('../src/app/env-file.ts')
const { envValue, moduleDirsFrom } = await import('../src/app/config.ts')

loadEnvFile()
/** PLINTH_MODULE_DIRS, as absolute folders. */
export const moduleDirs = moduleDirsFrom(envValue(process.env, 'PLINTH_MODULE_DIRS'))
