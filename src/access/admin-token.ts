// The platform admin token (PLINTH_ADMIN_TOKEN): one credential, checked in constant time.
import { hash, timingSafeEqual } from 'node:crypto'

const digest = (value: string) => hash('sha256', value, 'buffer')

/** Whether an Authorization header carries the admin token; never true when none is configured. */
export function isAdminToken(authorization: string | undefined, adminToken: string | undefined): boolean {
  if (!adminToken || !authorization?.startsWith('Bearer ')) return false
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  return timingSafeEqual(digest(authorization.slice(7)), digest(adminToken))
}
