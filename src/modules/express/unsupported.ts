// The parts of Express's \`res\` plinth does not serve, each with what to use instead. Calling one
// throws 501 UNSUPPORTED_EXPRESS_CALL naming the call, as the call is made, however the module
// reached the method (res.sendFile, a renamed or destructured res, a helper it was passed to):
// through the module's own error handlers first, as any error in Express.
import { problems } from '../../problems.ts'

const INSTEAD: Record<string, string> = {
  'res.sendFile': 'plinth modules answer from code, not from disk: read the file and answer with res.type(...).send(buffer)',
  'res.download': 'read the file and answer with res.attachment(name).send(buffer)',
  'res.render': 'plinth has no view engine: answer JSON with res.json(...)',
  'res.jsonp': 'JSONP is not served (it sidesteps CORS): answer with res.json(...) and list the caller in CORS_ORIGINS',
  'res.write': 'a response is sent whole, after the transaction commits: build the body and call res.send(body)',
  'res.writeHead': 'set the status and headers with res.status(code).set({...}), then res.send(body)',
  'res.flushHeaders': 'a response is sent whole, after the transaction commits: call res.send(body)',
}

/** Puts each unsupported method on Express's response class: it throws, saying what to use instead. */
export function refuseUnsupportedMethods(prototype: object) {
  for (const call of Object.keys(INSTEAD)) {
    Object.defineProperty(prototype, call.slice('res.'.length), {
      value: function unsupported() {
        throw problems.unsupportedExpressCall(`${call} is not supported by plinth; ${INSTEAD[call]}`)
      },
    })
  }
}
