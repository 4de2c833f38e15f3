// `npm start` (built to dist/main.js) and `npm run dev` (through tsx)
import { runServer } from './http/server.ts'

await runServer()
