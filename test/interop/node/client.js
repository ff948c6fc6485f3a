// Interop client for herald's tests, using Node's `ws` package.
// Usage: node client.js ws://127.0.0.1:PORT/path [--deflate[=BITS]]
// Sends text and binary messages of several sizes, checks each echo, closes
// with code 4000 and a reason, and prints one JSON line with the result.
// --deflate negotiates permessage-deflate (every message compressed, no
// client context takeover; BITS asks for server_max_window_bits) and sends
// compressible payloads. Node inflates with zlib, which rejects a
// back-reference beyond the negotiated window.
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const flag = process.argv.find((a) => a.startsWith('--deflate'));
let perMessageDeflate = false;
if (flag) {
  perMessageDeflate = { threshold: 0, clientNoContextTakeover: true };
  const bits = Number(flag.split('=')[1]);
  if (bits) perMessageDeflate.serverMaxWindowBits = bits;
}
const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const ws = new WebSocket(url, { perMessageDeflate });
const result = { ok: false, echoed: 0, closeCode: null, closeReason: '', error: null, extensions: '' };
const expected = [];
const timer = setTimeout(() => { result.error = 'timeout'; finish(); }, 20000);

function finish() {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

// payloads returns the text and binary message of n bytes.
function payloads(n) {
  if (!flag) {
    const bin = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bin[i] = (i * 31) & 0xff;
    return ['é'.repeat(Math.floor(n / 2)) + (n % 2 ? 'x' : ''), bin];
  }
  let text = '';
  for (let i = 0; text.length < n; i++) text += 'message ' + (i % 97) + ' of the feed; ';
  const bin = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bin[i] = (i % 251) ^ ((i >> 10) & 7);
  return [text.slice(0, n), bin];
}

ws.on('open', () => {
  const pmd = ws._extensions && ws._extensions['permessage-deflate'];
  // What the client accepted from the server's response.
  result.extensions = pmd ? 'permessage-deflate ' + JSON.stringify(pmd.params) : '';
  for (const n of sizes) {
    const [text, bin] = payloads(n);
    expected.push({ binary: false, data: Buffer.from(text) });
    ws.send(text);
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
