import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startTestHost } from '/work/main/src/testing/host.ts'
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dbg-'))
await fs.cp('/work/main/test/fixtures/stranger/bookings', path.join(root, 'bookings'), { recursive: true })
const th = await startTestHost({ env: { PLINTH_PLUGIN_DIRS: root, PLINTH_PLUGINS: 'bookings' } })
await th.createTenant('acme')
const { key } = await th.host.createKey('acme', 's', ['admin'])
const h = { authorization: `Bearer ${key}` }
const c = await th.app.inject({ method: 'POST', url: '/api/plugins/bookings/bookings', headers: h, payload: { guest: 'A', nights: 1 } })
console.log(c.statusCode, c.body)
const g = await th.app.inject({ url: '/api/plugins/bookings/bookings/' + c.json().id, headers: h })
console.log(g.statusCode, g.headers, JSON.stringify(g.body))
console.log(th.logs.slice(-3))
await th.close()
