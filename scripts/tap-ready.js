// `npm test`'s pretest: tap builds its Test class for a set of plugins, and ships built for its
// defaults. package.json's "tap" config drops @tapjs/typescript (tsx loads our tests, and the
// TypeScript plugin's loader would turn a module outside the project into CommonJS). tap notices a
// changed plugin set only after the run has already chosen its loaders, so a fresh install's first
// `npm test` would run with the default ones. This rebuilds tap before the run when, and only when,
// the built plugin set differs from the configured one: a check of a few milliseconds otherwise.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TapConfig } from '@tapjs/config';
import { withLock } from './lock.js';

const builtFile = fileURLToPath(
  new URL('./test-built/dist/esm/index.js', import.meta.resolve('@tapjs/test/package.json')),
);

const wanted = (await TapConfig.load()).pluginSignature;
const built = () => /export const signature = `([^`]*)`/.exec(readFileSync(builtFile, 'utf8'))?.[1]?.trim();

// Under the lock even when it looks built: another `npm test` starting at once may be rebuilding
// tap's files, and the signature is not the last of them it writes.
await withLock(fileURLToPath(new URL('../node_modules/.tap-ready.lock', import.meta.url)), () => {
  if (built() === wanted) return;
  console.error('tap: building for this project\'s plugins (once after an install)');
  const tapBin = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url));
  const result = spawnSync(tapBin, ['build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) {
    console.error('tap build failed');
    process.exit(result.status ?? 1);
  }
});
