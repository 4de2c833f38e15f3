// The brake on guessing credentials (src/rbac/failure-brake.ts), on its own clock: an address past
// the limit is refused with a Retry-After that counts down its window, the window ends on time
// (on a request, or by the sweeper), the refusals it absorbed are one log line, and the number of
// addresses tracked is bounded. Through HTTP, test/bad-input.test.ts.
import { Writable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import pino from 'pino'
import t from 'tap'
import { HttpProblem } from '../src/problems.ts'
import { FailureBrake } from '../src/access/failure-brake.ts'

function brakeWith(t: { teardown(fn: () => unknown): void }, options: { limit: number; windowMs: number; maxAddresses?: number }) {
  const lines: Record<string, any>[] = []
  const log = pino(new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }))
  const brake = new FailureBrake(log, options)
  t.teardown(() => brake.stop())
  const from = (ip: string) => ({ ip, log }) as unknown as FastifyRequest
  const fail = (ip: string) => brake.failed(from(ip), { reason: 'bad key secret' }, 'authentication failed')
  const check = (ip: string): HttpProblem | undefined => {
    try {
      brake.check(from(ip))
      return undefined
    } catch (err) {
      return err as HttpProblem
    }
  }
  const summaries = () => lines.filter((l) => l.notLogged !== undefined)
  return { brake, fail, check, lines, summaries }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('past the limit: 429 with Retry-After for the rest of the window; other addresses untouched', async (t) => {
  const { fail, check, lines } = brakeWith(t, { limit: 3, windowMs: 10_000 })
  for (let i = 0; i < 3; i++) {
    t.equal(check('10.0.0.1'), undefined, `failure ${i + 1} is still checked`)
    fail('10.0.0.1')
  }
  const refused = check('10.0.0.1')
  t.equal(refused?.status, 429)
  t.equal(refused?.code, 'TOO_MANY_FAILED_ATTEMPTS')
  t.equal(refused?.options.headers?.['retry-after'], '10', 'the whole 10 s window is still ahead')
  t.equal(check('10.0.0.2'), undefined, 'another address is not braked')
  t.equal(lines.filter((l) => l.msg === 'authentication failed' && l.level === 40).length, 3, 'each failure up to the limit is logged at warn')
  t.same(lines.map((l) => l.address), ['10.0.0.1', '10.0.0.1', '10.0.0.1'])
})

t.test('refusals while braked are one summary line when the window ends; none when there were none', async (t) => {
  const { fail, check, summaries } = brakeWith(t, { limit: 1, windowMs: 300 })
  fail('10.0.0.1')
  for (let i = 0; i < 5; i++) t.ok(check('10.0.0.1'), 'braked')
  fail('10.0.0.2') // braked too, but never refused
  t.same(summaries(), [], 'nothing summed up while the window runs')
  await sleep(700) // past the window, and past the sweep at 600 ms that ends both addresses' windows
  t.equal(check('10.0.0.1'), undefined, 'the window is over: checked again')
  t.match(summaries(), [{ address: '10.0.0.1', failures: 1, notLogged: 5, windowMs: 300, msg: '5 more authentication attempts from this address were refused (429) while it was braked' }])
  t.equal(summaries().length, 1, 'no line for an address that was never refused')
})

t.test('the sweeper ends windows that are over, and only those', async (t) => {
  const { fail, check, summaries } = brakeWith(t, { limit: 1, windowMs: 1500 })
  await sleep(1000)
  fail('10.0.0.1') // its window runs until about 2,500 ms; the sweeper runs at 1,500 and 3,000 ms
  check('10.0.0.1')
  await sleep(800)
  t.ok(check('10.0.0.1'), 'still braked after a sweep that came before its window ended')
  await sleep(2000)
  t.match(summaries(), [{ address: '10.0.0.1', notLogged: 2 }], 'a later sweep ended it, with no request from it')
})

t.test('at most maxAddresses windows: the oldest goes first', async (t) => {
  const { fail, check } = brakeWith(t, { limit: 1, windowMs: 10_000, maxAddresses: 2 })
  fail('10.0.0.1')
  fail('10.0.0.2')
  t.ok(check('10.0.0.1'), 'two addresses tracked: both braked')
  fail('10.0.0.3')
  t.equal(check('10.0.0.1'), undefined, 'a third pushed the oldest out')
  t.ok(check('10.0.0.2'))
  t.ok(check('10.0.0.3'))
})

t.test('a limit of 0 turns the brake off: no failure is refused or counted, each is still logged', async (t) => {
  const { fail, check, lines, summaries, brake } = brakeWith(t, { limit: 0, windowMs: 10_000 })
  for (let i = 0; i < 100; i++) fail('10.0.0.1')
  t.equal(check('10.0.0.1'), undefined, 'never braked')
  t.equal(lines.filter((l) => l.msg === 'authentication failed').length, 100, 'every failure logged')
  brake.stop()
  t.same(summaries(), [], 'nothing counted, so nothing to sum up')
})

t.test('stop() ends every window and writes what it holds', async (t) => {
  const { brake, fail, check, summaries } = brakeWith(t, { limit: 1, windowMs: 10_000 })
  fail('10.0.0.1')
  check('10.0.0.1')
  brake.stop()
  t.match(summaries(), [{ address: '10.0.0.1', notLogged: 1 }])
})
