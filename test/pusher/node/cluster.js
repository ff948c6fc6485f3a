// Pusher scenarios across two herald nodes sharing NATS, with clients
// nobody here wrote: pusher-js on each node and Pusher's Node server
// library on the other node's API. Usage:
//   node cluster.js HOST PORT_A PORT_B KEY SECRET APP_ID API_PORT_A API_PORT_B
// Prints one JSON line: {"ok":bool, "results":{scenario:true|"error"}}.
'use strict';
const crypto = require('crypto');
const PusherMod = require('pusher-js');
const Pusher = PusherMod.default || PusherMod;
const PusherServer = require('pusher');

const [host, portA, portB, key, secret, appId, apiA, apiB] = process.argv.slice(2);
const backendB = new PusherServer({ appId, key, secret, host, port: apiB, useTLS: false });
const backendA = new PusherServer({ appId, key, secret, host, port: apiA, useTLS: false });
const sign = (s) => crypto.createHmac('sha256', secret).update(s).digest('hex');

function client(port, userId) {
  return new Pusher(key, {
    cluster: 'mt1', wsHost: host, wsPort: Number(port), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        if (channelName.startsWith('presence-')) {
          const channel_data = JSON.stringify({ user_id: userId, user_info: { name: 'user ' + userId } });
          cb(null, { auth: key + ':' + sign(socketId + ':' + channelName + ':' + channel_data), channel_data });
        } else {
          cb(null, { auth: key + ':' + sign(socketId + ':' + channelName) });
        }
      },
    },
  });
}

const clients = [];
function track(c) { clients.push(c); return c; }
function waitFor(fn, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for ' + what)), 15000);
    fn((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
const subscribed = (ch) => waitFor((ok, fail) => {
  ch.bind('pusher:subscription_succeeded', ok);
  ch.bind('pusher:subscription_error', (e) => fail(new Error('subscription_error ' + JSON.stringify(e))));
}, 'subscription of ' + ch.name);

const scenarios = {
  // An event triggered through node B's API reaches a client on node A.
  async eventAcross() {
    const a = track(client(portA, 'e1'));
    const ch = a.subscribe('news');
    await subscribed(ch);
    const got = waitFor((ok) => ch.bind('tick', ok), 'the event on node A');
    await backendB.trigger('news', 'tick', { n: 1 });
    const d = await got;
    if (!d || d.n !== 1) throw new Error('event ' + JSON.stringify(d));
  },
  // A client event from node A reaches a client on node B.
  async clientEventAcross() {
    const a = track(client(portA, 'c1')), b = track(client(portB, 'c2'));
    const ca = a.subscribe('private-chat'), cb = b.subscribe('private-chat');
    await Promise.all([subscribed(ca), subscribed(cb)]);
    const got = waitFor((ok) => cb.bind('client-typing', ok), 'the client event on node B');
    ca.trigger('client-typing', { who: 'c1' });
    const d = await got;
    if (!d || d.who !== 'c1') throw new Error('client event ' + JSON.stringify(d));
  },
  // Presence: each node's member sees the other's; the backend of either
  // node lists both; the last leave on B is member_removed on A.
  async presenceAcross() {
    const a = track(client(portA, 'u1'));
    const pa = a.subscribe('presence-lobby');
    await subscribed(pa);
    const added = waitFor((ok) => pa.bind('pusher:member_added', ok), 'member_added on node A');
    const b = track(client(portB, 'u2'));
    const pb = b.subscribe('presence-lobby');
    const members = await subscribed(pb);
    if (members.count !== 2 || !members.get('u1')) throw new Error('members on B ' + JSON.stringify(members.members));
    const m = await added;
    if (m.id !== 'u2' || m.info.name !== 'user u2') throw new Error('member_added ' + JSON.stringify(m));
    for (const be of [backendA, backendB]) {
      const users = await (await be.get({ path: '/channels/presence-lobby/users' })).json();
      const ids = users.users.map((u) => u.id).sort().join(',');
      if (ids !== 'u1,u2') throw new Error('users ' + JSON.stringify(users));
    }
    const removed = waitFor((ok) => pa.bind('pusher:member_removed', ok), 'member_removed on node A');
    b.disconnect();
    const r = await removed;
    if (r.id !== 'u2' || pa.members.count !== 1) throw new Error('member_removed ' + JSON.stringify(r));
  },
};

(async () => {
  const results = {};
  let ok = true;
  for (const [name, fn] of Object.entries(scenarios)) {
    try { await fn(); results[name] = true; } catch (e) { ok = false; results[name] = String(e && e.message || e); }
  }
  for (const c of clients) { try { c.disconnect(); } catch (_) {} }
  process.stdout.write(JSON.stringify({ ok, results }) + '\n');
  process.exit(ok ? 0 : 1);
})();
