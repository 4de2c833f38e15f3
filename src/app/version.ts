// plinth's own version, from its package.json, read once at start.
import { readFileSync } from 'node:fs'
import { PROJECT_ROOT } from './paths.ts'

export const PLINTH_VERSION: string = JSON.parse(readFileSync(`${PROJECT_ROOT}/package.json`, 'utf8')).version
