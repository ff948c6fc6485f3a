// Unit tests of herald.js against a scripted in-memory WebSocket, with mock
// timers: every case is deterministic and runs in milliseconds. Run with
// `node --test` in client/js (go test ./client/js runs them).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const Herald = require('../herald.js');

// MockWS stands in for a WebSocket: tests open it, feed it frames and close
// it from the "server" side, and read what the client sent.
function mockWS() {
  const sockets = [];
  class MockWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }
    send(s) { this.sent.push(JSON.parse(s)); }
    close(code, reason) { this.readyState = 3; this.closedWith = { code, reason }; }
    open() { this.readyState = 1; this.onopen && this.onopen({}); }
    recv(obj) { this.onmessage && this.onmessage({ data: JSON.stringify(obj) }); }
    serverClose(code, reason) { this.readyState = 3; this.onclose && this.onclose({ code, reason: reason || '' }); }
  }
  return { MockWS, sockets, last: () => sockets[sockets.length - 1] };
}

// record collects every event of h as [name, payload] pairs.
function record(h) {
  const evs = [];
  for (const name of ['open', 'close', 'reconnect', 'recovered', 'subscribed', 'message', 'publication', 'error', 'state']) {
    h.on(name, (a) => evs.push([name, a]));
  }
  return evs;
}

const flush = () => new Promise((r) => setImmediate(r));
const noJitter = { minDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 };

test('backoffDelay grows, caps and jitters within bounds', () => {
  const o = { minDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5 };
  const cases = [
    { name: 'first, no luck', attempt: 0, random: 0, want: 250 },
    { name: 'first, full', attempt: 0, random: 1, want: 500 },
    { name: 'third', attempt: 2, random: 1, want: 2000 },
    { name: 'capped', attempt: 20, random: 1, want: 30000 },
    { name: 'capped, half', attempt: 20, random: 0, want: 15000 },
  ];
  for (const c of cases) assert.equal(Herald.backoffDelay(c.attempt, o, c.random), c.want, c.name);
  assert.equal(Herald.backoffDelay(3, Object.assign({}, o, { jitter: 1 }), 0), 0, 'full jitter reaches 0');
  assert.equal(Herald.backoffDelay(3, Object.assign({}, o, { jitter: 0 }), 0.7), 4000, 'no jitter');
});

test('resubscribes with since after a drop and delivers each offset once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0 });
  const evs = record(h);
  const got = [];
  h.subscribe('news', (data, meta) => got.push([meta.offset, data]));
  ws.last().open();
  assert.deepEqual(ws.last().sent, [{ op: 'sub', channel: 'news' }]);
  ws.last().recv({ op: 'subscribed', channel: 'news', offset: 3, epoch: 'e1' });
  ws.last().recv({ channel: 'news', offset: 4, data: 'a' });
  ws.last().recv({ channel: 'news', offset: 5, data: 'b' });
  ws.last().recv({ channel: 'news', offset: 5, data: 'dup' });
  ws.last().recv({ channel: 'news', offset: 2, data: 'old' });
  assert.deepEqual(h.position('news'), { offset: 5, epoch: 'e1' });

  ws.last().serverClose(1006);
  assert.equal(h.state, 'reconnecting');
  assert.equal(ws.sockets.length, 1, 'waits before reconnecting');
  t.mock.timers.tick(100);
  assert.equal(ws.sockets.length, 2);
  ws.last().open();
  assert.deepEqual(ws.last().sent, [{ op: 'sub', channel: 'news', since: { offset: 5, epoch: 'e1' } }]);
  ws.last().recv({ op: 'subscribed', channel: 'news', offset: 7, epoch: 'e1', recovered: true });
  // The backlog may overlap what was seen: only 6 and 7 are new.
  for (const [o, d] of [[5, 'b'], [6, 'c'], [7, 'd'], [6, 'c']]) ws.last().recv({ channel: 'news', offset: o, data: d });
  assert.deepEqual(got, [[4, 'a'], [5, 'b'], [6, 'c'], [7, 'd']]);
  const rec = evs.filter((e) => e[0] === 'recovered').map((e) => e[1].recovered);
  assert.deepEqual(rec, [true]);
  const opens = evs.filter((e) => e[0] === 'open').map((e) => e[1].reconnected);
  assert.deepEqual(opens, [false, true]);
  h.close();
});

test('recovered:false is surfaced and restarts the offsets', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0, channels: ['news'] });
  const evs = record(h);
  ws.last().open();
  ws.last().recv({ op: 'subscribed', channel: 'news', offset: 40, epoch: 'e1' });
  ws.last().recv({ channel: 'news', offset: 41, data: 1 });
  ws.last().serverClose(1001);
  t.mock.timers.tick(100);
  ws.last().open();
  ws.last().recv({ op: 'subscribed', channel: 'news', offset: 2, epoch: 'e2', recovered: false });
  ws.last().recv({ channel: 'news', offset: 3, data: 2 });
  const rec = evs.filter((e) => e[0] === 'recovered').map((e) => e[1]);
  assert.deepEqual(rec, [{ channel: 'news', recovered: false, offset: 2, epoch: 'e2' }]);
  const pubs = evs.filter((e) => e[0] === 'publication').map((e) => e[1]);
  assert.deepEqual(pubs, [1, 2], 'the new epoch delivers offset 3 although 41 was seen');
  h.close();
});

test('a drain\'s reconnect advice replaces the backoff', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  assert.equal(Herald.reconnectAdvice('server shutting down; reconnect_after_ms=1234'), 1234);
  assert.equal(Herald.reconnectAdvice('server shutting down'), null);
  assert.equal(Herald.reconnectAdvice(''), null);
  const ws = mockWS();
  // jitter 0 on the backoff; the advice still gets up to minDelay more.
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0, channels: ['news'] });
  const evs = record(h);
  ws.last().open();
  ws.last().recv({ op: 'subscribed', channel: 'news', offset: 4, epoch: 'e1' });
  ws.last().serverClose(1001, 'server shutting down; reconnect_after_ms=3000');
  const r = evs.filter((e) => e[0] === 'reconnect').map((e) => e[1]);
  assert.equal(r.length, 1);
  assert.ok(r[0].delay >= 3000 && r[0].delay <= 3100, 'delay ' + r[0].delay);
  t.mock.timers.tick(2999);
  assert.equal(ws.sockets.length, 1, 'no reconnect before the advice');
  t.mock.timers.tick(101);
  assert.equal(ws.sockets.length, 2);
  ws.last().open();
  assert.deepEqual(ws.last().sent, [{ op: 'sub', channel: 'news', since: { offset: 4, epoch: 'e1' } }]);
  h.close();
});

test('close codes decide about reconnecting', async (t) => {
  const cases = [
    { name: 'kicked (4003)', code: 4003, reconnects: false },
    { name: 'server normal (1000)', code: 1000, reconnects: true },
    { name: 'going away (1001)', code: 1001, reconnects: true },
    { name: 'slow consumer (1013)', code: 1013, reconnects: true },
    { name: 'abnormal (1006)', code: 1006, reconnects: true },
  ];
  for (const c of cases) {
    await t.test(c.name, (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const ws = mockWS();
      const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0 });
      const evs = record(h);
      ws.last().open();
      ws.last().serverClose(c.code, 'bye');
      t.mock.timers.tick(10000);
      assert.equal(ws.sockets.length, c.reconnects ? 2 : 1);
      assert.equal(h.state, c.reconnects ? 'reconnecting' : 'closed');
      const close = evs.find((e) => e[0] === 'close')[1];
      assert.equal(close.code, c.code);
      assert.equal(close.willReconnect, c.reconnects);
      h.close();
    });
  }
});

test('close() sends 1000 and never reconnects', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0 });
  ws.last().open();
  const p = h.publish('chat', 'x');
  h.close();
  assert.deepEqual(ws.last().closedWith, { code: 1000, reason: '' });
  ws.last().serverClose(1000); // detached: ignored
  t.mock.timers.tick(60000);
  assert.equal(ws.sockets.length, 1);
  assert.equal(h.state, 'closed');
  assert.equal(h.send('late'), false);
  return assert.rejects(p, { code: 'closed' });
});

test('4001 fetches a new token before reconnecting', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  let n = 0;
  const h = new Herald('ws://x/ws?channel=a', {
    WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0,
    tokenProvider: async () => 'tok' + (++n),
  });
  await flush();
  assert.equal(ws.last().url, 'ws://x/ws?channel=a&token=tok1');
  ws.last().open();
  ws.last().serverClose(4001, 'token expired');
  t.mock.timers.tick(0);
  await flush();
  assert.equal(ws.sockets.length, 2);
  assert.equal(ws.last().url, 'ws://x/ws?channel=a&token=tok2');
  // A plain drop keeps the token.
  ws.last().open();
  ws.last().serverClose(1006);
  t.mock.timers.tick(1000);
  await flush();
  assert.equal(ws.last().url, 'ws://x/ws?channel=a&token=tok2');
  assert.equal(n, 2);
  h.close();
});

test('a silent connection is pinged, then dropped and replaced', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 1000, pongTimeout: 500 });
  const evs = record(h);
  ws.last().open();
  t.mock.timers.tick(999);
  assert.deepEqual(ws.last().sent, []);
  t.mock.timers.tick(1);
  assert.deepEqual(ws.last().sent, [{ op: 'ping' }]);
  ws.last().recv({ op: 'pong' });
  t.mock.timers.tick(999);
  assert.equal(ws.sockets.length, 1, 'the pong kept it alive');
  t.mock.timers.tick(1);
  assert.equal(ws.last().sent.length, 2);
  t.mock.timers.tick(500);
  assert.equal(ws.sockets[0].closedWith.code, 4000);
  const close = evs.find((e) => e[0] === 'close')[1];
  assert.deepEqual([close.code, close.willReconnect], [4000, true]);
  t.mock.timers.tick(100);
  assert.equal(ws.sockets.length, 2);
  h.close();
});

test('publish resolves with the offset, rejects refusals, and waits for a connection', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, reconnect: noJitter, pingInterval: 0 });
  const evs = record(h);
  const early = h.publish('chat', { a: 1 });
  assert.equal(h.send({ action: 'get' }), true);
  ws.last().open();
  const sent = ws.last().sent;
  assert.deepEqual(sent.map((c) => c.op), ['pub', 'msg']);
  const late = h.publish('secret', 2);
  const refusedID = ws.last().sent[2].id;
  ws.last().recv({ op: 'published', channel: 'chat', offset: 7, id: sent[0].id });
  ws.last().recv({ op: 'error', code: 'forbidden', message: 'not allowed to publish', channel: 'secret', id: refusedID });
  ws.last().recv({ op: 'msg', data: { value: 3 } });
  assert.equal(await early, 7);
  await assert.rejects(late, { name: 'HeraldError', code: 'forbidden', channel: 'secret' });
  assert.deepEqual(evs.filter((e) => e[0] === 'message').map((e) => e[1]), [{ value: 3 }]);
  // Sent but unanswered when the connection drops: the outcome is unknown.
  const lost = h.publish('chat', 3);
  ws.last().serverClose(1006);
  await assert.rejects(lost, { code: 'disconnected' });
  h.close();
});

test('unsubscribe sends unsub after the last handler', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, pingInterval: 0 });
  ws.last().open();
  const a = h.subscribe('news', () => {});
  const b = h.subscribe('news', () => {});
  a();
  b();
  b();
  assert.deepEqual(ws.last().sent, [{ op: 'sub', channel: 'news' }, { op: 'unsub', channel: 'news' }]);
  assert.equal(h.position('news'), null);
  h.close();
});

test('presence: join and leave events, the subscribed list and presence()', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ws = mockWS();
  const h = new Herald('ws://x/ws', { WebSocket: ws.MockWS, pingInterval: 0 });
  const evs = [];
  for (const name of ['subscribed', 'join', 'leave']) h.on(name, (a) => evs.push([name, a]));
  ws.last().open();
  h.subscribe('room:1', () => {});
  ws.last().recv({ op: 'subscribed', channel: 'room:1', offset: 0, epoch: 'e', presence: { count: 2, users: ['a', 'b'] } });
  ws.last().recv({ op: 'join', channel: 'room:1', user: 'c' });
  ws.last().recv({ op: 'leave', channel: 'room:1', user: 'a' });
  ws.last().recv({ op: 'join', channel: 'elsewhere', user: 'z' }); // not subscribed here
  assert.deepEqual(evs, [
    ['subscribed', { channel: 'room:1', offset: 0, epoch: 'e', presence: { count: 2, users: ['a', 'b'] } }],
    ['join', { channel: 'room:1', user: 'c' }],
    ['leave', { channel: 'room:1', user: 'a' }],
  ]);
  const asked = h.presence('room:1');
  const refused = h.presence('news');
  const [q1, q2] = ws.last().sent.slice(-2);
  assert.deepEqual([q1.op, q1.channel, q2.channel], ['presence', 'room:1', 'news']);
  ws.last().recv({ op: 'presence', channel: 'room:1', count: 2, users: ['b', 'c'], id: q1.id });
  ws.last().recv({ op: 'error', code: 'bad_request', message: 'channel has no presence', channel: 'news', id: q2.id });
  assert.deepEqual(await asked, { channel: 'room:1', count: 2, users: ['b', 'c'] });
  await assert.rejects(refused, { name: 'HeraldError', code: 'bad_request' });
  h.close();
});
