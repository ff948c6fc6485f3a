// Pusher's official Node server library (npm `pusher`) as a client of
// herald's Pusher HTTP API, for herald's tests.
// Usage: node client.js HOST PORT APP_ID KEY SECRET
// Triggers an event, a batch and a message to a user, queries the
// channels, a channel and a presence channel's users, terminates a user's
// connections, and tries once with a wrong secret; prints one JSON line:
// {"ok":bool,"steps":{name:{"status":N,"body":...}},"error":...}.
'use strict';
const Pusher = require('pusher');

const [host, port, appId, key, secret] = process.argv.slice(2);
const opts = { appId, key, secret, host, port, useTLS: false, timeout: 10000 };
const pusher = new Pusher(opts);
const wrong = new Pusher({ ...opts, secret: secret + 'x' });
const result = { ok: false, steps: {}, error: null };

// step runs one call and records its status and JSON answer, or the
// status and text of the error the library raised.
async function step(name, call) {
  try {
    const res = await call();
    const text = await res.text();
    result.steps[name] = { status: res.status, body: text ? JSON.parse(text) : null };
  } catch (err) {
    result.steps[name] = { status: err.status || 0, error: String(err.body || err.message) };
  }
}

(async () => {
  await step('trigger', () =>
    pusher.trigger(['news', 'presence-room'], 'greet', { hello: 'world' }, {
      socket_id: '123.456',
      info: 'subscription_count',
    }));
  await step('batch', () =>
    pusher.triggerBatch([
      { channel: 'news', name: 'one', data: 'first' },
      { channel: 'presence-room', name: 'two', data: { n: 2 }, info: 'user_count,subscription_count' },
    ]));
  await step('sendToUser', () => pusher.sendToUser('alice', 'note', { for: 'alice' }));
  await step('channels', () =>
    pusher.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' } }));
  await step('channel', () =>
    pusher.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } }));
  await step('users', () => pusher.get({ path: '/channels/presence-room/users' }));
  await step('terminate', () => pusher.terminateUserConnections('bob'));
  await step('wrongSecret', () => wrong.trigger('news', 'nope', 'x'));
  result.ok = true;
})().catch((err) => {
  result.error = String(err && err.stack || err);
}).finally(() => {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
});
