// The docs' examples are copied from tested code: every code block marked
// `<!-- example: <file> -->` must be lines of that file, in that order, so an example cannot drift
// from the code its suite runs.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'

const EXAMPLE = /<!-- example: (\S+) -->\n```\w*\n([\s\S]*?)```/g

for (const doc of ['docs/modules.md', 'docs/contract.md', 'README.md']) {
  const text = await fs.readFile(path.join(PROJECT_ROOT, doc), 'utf8')
  for (const [, file, block] of text.matchAll(EXAMPLE)) {
    t.test(`${doc}: the example from ${file}`, async (t) => {
      const source = (await fs.readFile(path.join(PROJECT_ROOT, file), 'utf8')).split('\n').map((line) => line.trimEnd())
      let at = 0
      for (const line of block.split('\n').map((l) => l.trimEnd()).filter(Boolean)) {
        const found = source.indexOf(line, at)
        t.ok(found >= 0, found >= 0 ? `${file}:${found + 1}` : `not in ${file} (after line ${at}): ${line}`)
        if (found >= 0) at = found + 1
      }
    })
  }
}

t.test('the docs mark their examples', async (t) => {
  const text = await fs.readFile(path.join(PROJECT_ROOT, 'docs/modules.md'), 'utf8')
  t.ok([...text.matchAll(EXAMPLE)].length >= 2, 'docs/modules.md has its examples checked')
})
