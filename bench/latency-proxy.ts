// A TCP proxy that holds every chunk for half of PROXY_RTT_MS in each direction: PostgreSQL as if it
// were on another host. Node timers are whole milliseconds, so the least it adds is 2 ms a round
// trip. Timers of equal length fire in the order they were set, so each stream keeps its order.
import net from 'node:net'

const [host, port] = (process.env.PROXY_TARGET ?? '127.0.0.1:5432').split(':')
const oneWayMs = Math.max(1, Math.round(Number(process.env.PROXY_RTT_MS ?? 2) / 2))

function forward(from: net.Socket, to: net.Socket) {
  from.on('data', (chunk) => setTimeout(() => to.write(chunk), oneWayMs))
  from.on('end', () => setTimeout(() => to.end(), oneWayMs))
  from.on('error', () => to.destroy())
  from.on('close', () => setTimeout(() => to.destroy(), oneWayMs))
}

const server = net.createServer((client) => {
  const upstream = net.connect(Number(port), host)
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  forward(client, upstream)
  forward(upstream, client)
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`))
process.on('SIGTERM', () => process.exit(0))
