// build.mjs writes the package's two builds from herald.js, with nothing
// but Node (no bundler):
//   dist/herald.js   herald.js as it is: a script tag defines window.Herald,
//                    require() returns the Herald class (CommonJS)
//   dist/herald.mjs  an ES module: herald.js runs against a local `module`
//                    object, whose export becomes the default and named
//                    exports; nothing is put on globalThis
// `npm pack` runs it (prepack); dist/ is not committed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = readFileSync(join(here, 'herald.js'), 'utf8');
const { version } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const banner = `/* @herald-push/client ${version} */\n`;

const esm = `${banner}const module = { exports: {} };
${src}
const Herald = module.exports;
export default Herald;
export { Herald };
export const HeraldError = Herald.HeraldError;
export const backoffDelay = Herald.backoffDelay;
export const reconnectAdvice = Herald.reconnectAdvice;
export const CLOSE_TOKEN_EXPIRED = Herald.CLOSE_TOKEN_EXPIRED;
export const CLOSE_KICKED = Herald.CLOSE_KICKED;
`;

mkdirSync(join(here, 'dist'), { recursive: true });
writeFileSync(join(here, 'dist', 'herald.js'), banner + src);
writeFileSync(join(here, 'dist', 'herald.mjs'), esm);
