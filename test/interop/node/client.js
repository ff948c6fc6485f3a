// Interop client for herald's tests, using Node's `ws` package.
// Usage: node client.js ws://127.0.0.1:PORT/path
// Sends text and binary messages of several sizes, checks each echo, closes
// with code 4000 and a reason, and prints one JSON line with the result.
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const deflate = process.argv.includes('--deflate');
const ws = new WebSocket(url, { perMessageDeflate: deflate });
const result = { ok: false, echoed: 0, closeCode: null, closeReason: '', error: null, extensions: '' };
const expected = [];
const timer = setTimeout(() => { result.error = 'timeout'; finish(); }, 15000);

function finish() {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

ws.on('open', () => {
  result.extensions = ws.extensions;
  for (const n of sizes) {
    const text = 'é'.repeat(Math.floor(n / 2)) + (n % 2 ? 'x' : '');
    expected.push({ binary: false, data: Buffer.from(text) });
    ws.send(text);
    const bin = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bin[i] = (i * 31) & 0xff;
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
  if (expected.length === 0) ws.close(4000, 'node done');
});

ws.on('close', (code, reason) => {
  result.closeCode = code;
  result.closeReason = reason.toString();
  result.ok = result.error === null && result.echoed === sizes.length * 2 && code === 4000;
  finish();
});

ws.on('error', (err) => { result.error = String(err); finish(); });
