// Node's in-thread module hooks (`module.registerHooks`, Node 22.15 and 23.5 on), typed here
// because the @types/node that matches the oldest Node plinth runs on (20) does not know them.
// Undefined on Node 20: callers keep to what Node 20 has there.
import module from 'node:module'

export type Resolved = { url: string; format?: string | null; shortCircuit?: boolean }
export type ResolveContext = { parentURL?: string; conditions?: string[] }
export type NextResolveSync = (specifier: string, context: ResolveContext) => Resolved
export type ResolveSync = (specifier: string, context: ResolveContext, next: NextResolveSync) => Resolved

export const registerHooks = (module as unknown as { registerHooks?: (hooks: { resolve: ResolveSync }) => unknown }).registerHooks
