// `npm start`
import { runServer } from './host/server.ts'

await runServer()
