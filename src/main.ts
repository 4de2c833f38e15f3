// `npm start` (built to dist/main.js) and `npm run dev` (through tsx). The server is imported only
// once drizzle-imports.ts has set its hook: a static import would be resolved before it.
import './platform/drizzle-imports.ts'

const { runServer } = await import('./http/server.ts')
await runServer()
