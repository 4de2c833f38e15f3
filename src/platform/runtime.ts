// Which Node.js runs plinth, and what an operator should be told about it. plinth is built and
// benchmarked on Node 24 LTS; Node 22 is in maintenance and supported; Node 20 (from 20.12) still
// runs it, but left maintenance in April 2026 and gets no security fixes.
export const RECOMMENDED_NODE_MAJOR = 24

/** One line for the log at start when this Node is past its end of life; undefined otherwise. */
export function runtimeNotice(version: string = process.versions.node): string | undefined {
  const major = Number(version.split('.')[0])
  if (major >= 22) return undefined
  return `Node ${version} is past its end of life (Node ${major} ended in April 2026) and gets no security fixes: run plinth on Node ${RECOMMENDED_NODE_MAJOR} LTS`
}
