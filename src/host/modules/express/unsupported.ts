// The parts of Express plinth does not serve, each with what to use instead. A module whose
// route functions call one is refused when it registers, naming the call, rather than answering
// an opaque 500 at request time.

const INSTEAD: Record<string, string> = {
  'res.sendFile': 'plinth modules answer from code, not from disk: read the file and answer with res.type(...).send(buffer)',
  'res.download': 'read the file and answer with res.attachment(name).send(buffer)',
  'res.render': 'plinth has no view engine: answer JSON with res.json(...)',
  'res.jsonp': 'JSONP is not served (it sidesteps CORS): answer with res.json(...) and list the caller in CORS_ORIGINS',
  'res.write': 'a response is sent whole, after the transaction commits: build the body and call res.send(body)',
  'res.writeHead': 'set the status and headers with res.status(code).set({...}), then res.send(body)',
  'res.flushHeaders': 'a response is sent whole, after the transaction commits: call res.send(body)',
}

export const UNSUPPORTED_RESPONSE_METHODS = Object.keys(INSTEAD).map((call) => call.slice('res.'.length))

export function unsupportedMessage(call: string) {
  return `${call} is not supported by plinth; ${INSTEAD[call]}`
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** The name a function gives its response parameter (its second, or third for an error handler). */
function responseParameter(fn: Function): string | undefined {
  const source = Function.prototype.toString.call(fn)
  const head = /^(?:async\s*)?(?:function\b[^(]*)?\(([^)]*)\)/.exec(source)
  if (!head) return undefined
  const names = head[1].split(',').map((p) => p.trim().replace(/\s*[:=].*$/, ''))
  const name = names[fn.length === 4 ? 2 : 1]
  return name && IDENTIFIER.test(name) ? name : undefined
}

/** The first unsupported Express call a route function makes on its `res`, if any. */
export function unsupportedCall(fn: Function): string | undefined {
  const res = responseParameter(fn)
  if (!res) return undefined
  const source = Function.prototype.toString.call(fn)
  const call = new RegExp(`\\b${res.replace(/\$/g, '\\$')}\\s*\\.\\s*(${UNSUPPORTED_RESPONSE_METHODS.join('|')})\\s*\\(`).exec(source)
  return call ? `res.${call[1]}` : undefined
}
