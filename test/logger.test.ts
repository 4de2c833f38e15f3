// The log line an operator reads: credentials never reach it, wherever they sit in what was logged.
import t from 'tap'
import { createLogger } from '../src/platform/logger.ts'

function capture() {
  const lines: any[] = []
  const log = createLogger({ logLevel: 'info', logPretty: false }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

t.test('secret-named keys are redacted at any depth, in objects and arrays', async (t) => {
  const { log, lines } = capture()
  const logged = {
    password: 'pw-1',
    req: { headers: { authorization: 'Bearer plk_abc_def', Cookie: 'sid=2', 'x-api-key': 'k-3', accept: 'json' } },
    config: { databaseUrl: 'postgres://u:pw-4@db/x', adminToken: 'adm-5', port: 3000 },
    jobs: [{ token: 'tok-6', id: 1 }, { id: 2 }],
    nested: { a: { b: { clientSecret: 'cs-7' } } },
  }
  log.info(logged, 'with secrets')
  const line = JSON.stringify(lines[0])
  for (const secret of ['pw-1', 'plk_abc_def', 'sid=2', 'k-3', 'pw-4', 'adm-5', 'tok-6', 'cs-7']) t.notMatch(line, secret, `${secret} is not in the line`)
  t.equal(lines[0].req.headers.accept, 'json', 'everything else is kept')
  t.equal(lines[0].req.headers.authorization, '[redacted]')
  t.equal(lines[0].config.port, 3000)
  t.same(lines[0].jobs, [{ token: '[redacted]', id: 1 }, { id: 2 }])
  t.equal(lines[0].nested.a.b.clientSecret, '[redacted]')
  t.equal(logged.password, 'pw-1', "the caller's object is not changed")
  t.equal(logged.req.headers.authorization, 'Bearer plk_abc_def')
})

t.test('a line with no secret is written as logged, errors with their message and stack', async (t) => {
  const { log, lines } = capture()
  log.info({ tenant: 'acme', principal: { id: 'key:1', kind: 'key' }, status: 200 }, 'request completed')
  t.match(lines[0], { tenant: 'acme', principal: { id: 'key:1', kind: 'key' }, status: 200, msg: 'request completed', service: 'plinth' })
  log.error({ err: Object.assign(new Error('boom'), { code: 'E1' }) }, 'failed')
  t.match(lines[1].err, { message: 'boom', code: 'E1', stack: /Error: boom/ })
})
