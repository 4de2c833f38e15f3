#!/usr/bin/env node
// The `plinth` command. plinth runs its TypeScript (and its modules') through tsx, as `npm start` does.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
