// harness.js drives herald.js for the Go tests in test/browser: it takes a
// JSON config as its argument, prints every client event as one JSON line
// on stdout, and runs JSON-line commands read from stdin. Node's `ws`
// package comes from NODE_PATH (test/interop/node/node_modules).
'use strict';
const path = require('path');
const readline = require('readline');
const WebSocket = require('ws');
const Herald = require(path.join(__dirname, '..', '..', '..', 'client', 'js', 'herald.js'));

const cfg = JSON.parse(process.argv[2]);
const emit = (o) => process.stdout.write(JSON.stringify(Object.assign({ t: Date.now() }, o)) + '\n');

const opts = {
  WebSocket,
  token: cfg.token,
  channels: cfg.channels || [],
  reconnect: cfg.reconnect,
  pingInterval: cfg.pingInterval,
  pongTimeout: cfg.pongTimeout,
};
let tokens = 0;
if (cfg.tokenURL) {
  // Each call fetches a freshly minted token from the test.
  opts.tokenProvider = async () => {
    const r = await fetch(cfg.tokenURL);
    if (!r.ok) throw new Error('token endpoint: ' + r.status);
    tokens++;
    emit({ ev: 'token', n: tokens });
    return (await r.text()).trim();
  };
}

const h = new Herald(cfg.url, opts);
h.on('open', (e) => emit({ ev: 'open', reconnected: e.reconnected }));
h.on('close', (e) => emit({ ev: 'close', code: e.code, reason: e.reason, willReconnect: e.willReconnect }));
h.on('reconnect', (e) => emit({ ev: 'reconnect', attempt: e.attempt, delay: e.delay }));
h.on('subscribed', (e) => emit(Object.assign({ ev: 'subscribed' }, e)));
h.on('recovered', (e) => emit(Object.assign({ ev: 'recovered' }, e)));
h.on('publication', (data, m) => emit({ ev: 'pub', channel: m.channel, offset: m.offset, data }));
h.on('message', (data) => emit({ ev: 'msg', data }));
h.on('state', (s) => emit({ ev: 'state', state: s }));
h.on('error', (e) => emit({ ev: 'error', message: String(e && e.message ? e.message : e) }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const c = JSON.parse(line);
  switch (c.cmd) {
    case 'subscribe':
      h.subscribe(c.channel, () => {});
      break;
    case 'publish':
      h.publish(c.channel, c.data).then(
        (offset) => emit({ ev: 'published', offset }),
        (err) => emit({ ev: 'pubfail', code: err.code }));
      break;
    case 'send':
      h.send(c.data);
      break;
    case 'raw':
      // A command written as is, bypassing the client's bookkeeping.
      h._ws.send(JSON.stringify(c.frame));
      break;
    case 'close':
      h.close();
      break;
    case 'exit':
      h.close();
      setTimeout(() => process.exit(0), 50);
      break;
    default:
      emit({ ev: 'error', message: 'unknown command ' + c.cmd });
  }
});
rl.on('close', () => { h.close(); process.exit(0); });
