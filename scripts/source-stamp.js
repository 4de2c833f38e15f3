// What src/ holds, as one string: every file's path, size and modification time. `npm run build`
// writes it beside what it built (dist/.source-stamp); the `plinth` command runs dist/ only while
// src/ still matches it. A stat per file, no reading: a few milliseconds for the whole tree.
import fs from 'node:fs'
import path from 'node:path'

export function sourceStamp(root) {
  const src = path.join(root, 'src')
  return fs
    .readdirSync(src, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = path.join(entry.parentPath ?? entry.path, entry.name)
      const stat = fs.statSync(file)
      return `${path.relative(src, file)}:${stat.size}:${stat.mtimeMs}`
    })
    .sort()
    .join('\n')
}
