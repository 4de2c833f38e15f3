// `node --import scripts/contract-resolution.js`: for test files in a PLINTH_MODULE_DIRS folder with no
// node_modules of its own (src/testing/contract-resolution.ts). Plain JavaScript, so it can come
// before tap's own --import of tsx: it registers tsx itself.
import { register } from 'tsx/esm/api'

register()
await import('../src/testing/contract-resolution.ts')
