// check.mjs packs ../ (npm pack, which builds dist/ in prepack), installs
// the tarball here without saving it, type-checks example.ts and
// require.cts against it with tsc --noEmit, and loads both builds.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
import assert from 'node:assert/strict';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const [{ filename }] = JSON.parse(run(npm, ['pack', '..', '--json', '--pack-destination', '.']));
try {
  run(npm, ['install', '--no-save', '--no-audit', '--no-fund', '--offline', './' + filename]);
} finally {
  rmSync(filename, { force: true });
}
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { stdio: 'inherit' });

const esm = await import('@herald-push/client');
assert.equal(typeof esm.default, 'function');
assert.equal(esm.Herald, esm.default);
assert.equal(esm.HeraldError, esm.default.HeraldError);
assert.equal(globalThis.Herald, undefined, 'the ES module build must not set a global');
const cjs = createRequire(import.meta.url)('@herald-push/client');
assert.equal(cjs.Herald, cjs);
assert.equal(cjs.CLOSE_KICKED, 4003);
console.log(`types-test: ${filename} type-checks and loads`);
