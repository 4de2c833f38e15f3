#!/usr/bin/env node
// The `plinth` command. It runs from src/ through tsx, as `npm run dev` does, so it always runs the
// code as it is now, built or not.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
