// Who is changing the platform, wherever in the service code the change is made: the admin API,
// the console and the CLI each say it once, where they take the caller in, and every audit row
// written under it names them. A change made with no actor in scope (a host migrating at start, a
// failed module set-up undone) is the system's.
import { AsyncLocalStorage } from 'node:async_hooks'

export type ActorKind = 'admin-token' | 'console' | 'api-key' | 'jwt' | 'cli' | 'system' | 'anonymous'

export interface Actor {
  kind: ActorKind
  /** Which one: the console's operator and session, the key's id, the JWT's subject, the OS user. */
  id: string | null
  /** The HTTP request the change was made in, if any. */
  requestId?: string
  clientAddress?: string
}

export const SYSTEM: Actor = { kind: 'system', id: null }

const acting = new AsyncLocalStorage<Actor>()

/** Runs `work` with `actor` as the author of every audit row written in it. */
export function actingAs<T>(actor: Actor, work: () => T): T {
  return acting.run(actor, work)
}

export function currentActor(): Actor {
  return acting.getStore() ?? SYSTEM
}
