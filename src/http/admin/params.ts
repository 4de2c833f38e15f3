// Path parameters the admin routes share, built from the same patterns the rest of plinth checks.
import { Type } from 'typebox'
import { MODULE_ID } from '../../contract/contract.ts'
import { TENANT_CODE } from '../../tenancy/schema-name.ts'

export const TenantCode = Type.String({ pattern: TENANT_CODE.source })
export const ModuleId = Type.String({ pattern: MODULE_ID })
