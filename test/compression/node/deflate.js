// permessage-deflate interop client for herald's tests, using Node's `ws`
// package (installed in test/interop/node) and Node's zlib, which enforces
// the negotiated window when it inflates the server's messages.
// Usage: node deflate.js URL [serverMaxWindowBits]
// Echoes compressible text and binary messages of several sizes and prints
// one JSON line with the result.
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', '..', 'interop', 'node', 'node_modules', 'ws'));

const url = process.argv[2];
const bits = process.argv[3] ? Number(process.argv[3]) : undefined;
const perMessageDeflate = { threshold: 0, clientNoContextTakeover: true };
if (bits) perMessageDeflate.serverMaxWindowBits = bits;
const ws = new WebSocket(url, { perMessageDeflate });
const sizes = [1, 200, 5000, 70000, 300000];
const result = { ok: false, echoed: 0, extensions: '', error: null };
const expected = [];
const timer = setTimeout(() => { result.error = 'timeout'; finish(); }, 20000);

function finish() {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

ws.on('open', () => {
  const pmd = ws._extensions && ws._extensions['permessage-deflate'];
  // What the client accepted from the server's response.
  result.extensions = pmd ? 'permessage-deflate ' + JSON.stringify(pmd.params) : '';
  for (const n of sizes) {
    let text = '';
    for (let i = 0; text.length < n; i++) text += 'message ' + (i % 97) + ' of the feed; ';
    text = text.slice(0, n);
    expected.push({ binary: false, data: Buffer.from(text) });
    ws.send(text);
    const bin = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bin[i] = (i % 251) ^ ((i >> 10) & 7);
    expected.push({ binary: true, data: bin });
    ws.send(bin);
  }
});

ws.on('message', (data, isBinary) => {
  const want = expected.shift();
  if (!want || want.binary !== isBinary || !want.data.equals(Buffer.from(data))) {
    result.error = `echo ${result.echoed} mismatch (binary=${isBinary}, ${data.length} bytes)`;
    ws.terminate();
    return finish();
  }
  result.echoed++;
  if (expected.length === 0) ws.close(1000, 'done');
});

ws.on('close', (code) => {
  result.ok = result.error === null && result.echoed === sizes.length * 2 && code === 1000;
  finish();
});

ws.on('error', (err) => { result.error = String(err); finish(); });
