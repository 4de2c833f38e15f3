// Summarises a .cpuprofile: the functions (and packages) where the process spent its own time.
import fs from 'node:fs'

const profile = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const self = new Map<number, number>()
const dt: number[] = profile.timeDeltas
profile.samples.forEach((id: number, i: number) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const byFunction = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const node of profile.nodes) {
  const time = self.get(node.id) ?? 0
  const { functionName, url, lineNumber } = node.callFrame
  const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')
  const name = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + time)
  const pkg = url.includes('node_modules/') ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1') : url.startsWith('node:') ? 'node' : url.includes('/src/') ? 'plinth src' : functionName.startsWith('(') ? functionName : 'other'
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + time)
}
const top = (m: Map<string, number>, n: number) =>
  [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n')
console.log(`by package:\n${top(byPackage, 15)}\n\nby function:\n${top(byFunction, 30)}`)
