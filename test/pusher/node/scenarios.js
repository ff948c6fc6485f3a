// Pusher protocol scenarios against herald with clients nobody here
// wrote: pusher-js (its Node build) and Laravel Echo on top of it. Usage:
//   node scenarios.js HOST PORT KEY SECRET APP_ID API_PORT
// Prints one JSON line: {"ok":bool, "results":{scenario:true|"error"}}.
'use strict';
const { harness } = require('./harness');
const EchoMod = require('laravel-echo');
const Echo = EchoMod.default || EchoMod;
const PusherServer = require('pusher');

const [host, port, key, secret, appId, apiPort] = process.argv.slice(2);
// The backend side: Pusher's own Node server library, pointed at herald's
// API listener.
const backend = new PusherServer({ appId, key, secret, host, port: apiPort, useTLS: false });
const h = harness({ host, key, secret });
const { Pusher, sign, track, waitFor, subscribed } = h;
const client = (opts) => h.client(port, opts);

const scenarios = {
  // A backend triggers through the HTTP API; pusher-js clients receive it,
  // except the one whose socket_id the backend excluded.
  async serverTrigger() {
    const a = client(), b = client();
    const ca = a.subscribe('orders'), cb = b.subscribe('orders');
    await Promise.all([subscribed(ca), subscribed(cb)]);
    const got = waitFor((ok) => ca.bind('order-shipped', ok), 'order-shipped');
    let leaked = null;
    cb.bind('order-shipped', (d) => { leaked = d; });
    await backend.trigger('orders', 'order-shipped', { id: 42 }, { socket_id: b.connection.socket_id });
    const d = await got;
    if (d.id !== 42) throw new Error('got ' + JSON.stringify(d));
    // A second event that reaches both proves b was excluded from the first
    // only (events on one channel arrive in order).
    const both = Promise.all([
      waitFor((ok) => ca.bind('order-closed', ok), 'order-closed a'),
      waitFor((ok) => cb.bind('order-closed', ok), 'order-closed b'),
    ]);
    await backend.trigger('orders', 'order-closed', { id: 42 });
    await both;
    if (leaked !== null) throw new Error('the excluded socket got ' + JSON.stringify(leaked));
  },
  // The backend queries channels and presence members.
  async serverQueries() {
    const a = client({ userId: 'q1' }), b = client({ userId: 'q2' });
    const pa = a.subscribe('presence-desk'), pb = b.subscribe('presence-desk');
    await Promise.all([subscribed(pa), subscribed(pb)]);
    const users = await (await backend.get({ path: '/channels/presence-desk/users' })).json();
    const ids = users.users.map((u) => u.id).sort().join(',');
    if (ids !== 'q1,q2') throw new Error('users ' + JSON.stringify(users));
    const list = await (await backend.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
    if (!list.channels['presence-desk'] || list.channels['presence-desk'].user_count !== 2) throw new Error('channels ' + JSON.stringify(list));
    const one = await (await backend.get({ path: '/channels/presence-desk', params: { info: 'user_count,subscription_count' } })).json();
    if (!one.occupied || one.user_count !== 2 || one.subscription_count !== 2) throw new Error('channel ' + JSON.stringify(one));
  },
  async public() {
    const a = client();
    const ch = a.subscribe('news');
    await subscribed(ch);
    // A client event on a public channel is refused with pusher:error.
    const refused = waitFor((ok) => a.connection.bind('error', ok), 'pusher:error');
    ch.trigger('client-nope', { x: 1 });
    const e = await refused;
    if (!e || !e.data || !/only supported on private and presence/.test(e.data.message)) throw new Error('unexpected error ' + JSON.stringify(e));
  },
  async private() {
    const a = client(), b = client();
    const ca = a.subscribe('private-room'), cb = b.subscribe('private-room');
    await Promise.all([subscribed(ca), subscribed(cb)]);
    const got = waitFor((ok) => cb.bind('client-msg', ok), 'client-msg');
    ca.trigger('client-msg', { text: 'hello' });
    const d = await got;
    if (d.text !== 'hello') throw new Error('got ' + JSON.stringify(d));
  },
  async badAuth() {
    const c = track(new Pusher(key, {
      cluster: 'mt1', wsHost: host, wsPort: Number(port), forceTLS: false, enabledTransports: ['ws'], disableStats: true,
      channelAuthorization: { customHandler: (_p, cb) => cb(null, { auth: key + ':' + '0'.repeat(64) }) },
    }));
    const ch = c.subscribe('private-secret');
    const e = await waitFor((ok) => ch.bind('pusher:subscription_error', ok), 'subscription_error');
    if (e.status !== 401) throw new Error('got ' + JSON.stringify(e));
  },
  async presence() {
    const a = client({ userId: 'u1' });
    const pa = a.subscribe('presence-lobby');
    await subscribed(pa);
    const added = waitFor((ok) => pa.bind('pusher:member_added', ok), 'member_added');
    const b = client({ userId: 'u2' });
    const pb = b.subscribe('presence-lobby');
    const members = await subscribed(pb);
    if (members.count !== 2 || !members.get('u1')) throw new Error('members ' + JSON.stringify(members.members));
    const m = await added;
    if (m.id !== 'u2' || m.info.name !== 'user u2') throw new Error('member_added ' + JSON.stringify(m));
    const removed = waitFor((ok) => pa.bind('pusher:member_removed', ok), 'member_removed');
    b.disconnect();
    const r = await removed;
    if (r.id !== 'u2' || pa.members.count !== 1) throw new Error('member_removed ' + JSON.stringify(r));
  },
  async signin() {
    const a = client({ userId: 'u9' });
    const ok = waitFor((done) => a.bind('pusher:signin_success', done), 'signin_success');
    a.signin();
    const d = await ok;
    if (!d || JSON.parse(d.user_data).id !== 'u9') throw new Error('signin ' + JSON.stringify(d));
  },
  async unknownApp() {
    const c = client({ key: 'no-such-key' });
    const e = await waitFor((ok) => c.connection.bind('error', ok), 'error for an unknown app');
    const code = (e.data && e.data.code) || (e.error && e.error.data && e.error.data.code);
    if (code !== 4001) throw new Error('error ' + JSON.stringify(e));
  },
  async echo() {
    const mk = () => new Echo({
      broadcaster: 'pusher', key, cluster: 'mt1', wsHost: host, wsPort: Number(port), forceTLS: false,
      enabledTransports: ['ws'], disableStats: true, Pusher,
      authorizer: (channel) => ({
        authorize: (socketId, cb) => cb(null, { auth: key + ':' + sign(socketId + ':' + channel.name) }),
      }),
    });
    const e1 = mk(), e2 = mk();
    track(e1.connector.pusher); track(e2.connector.pusher);
    const c1 = e1.private('orders'), c2 = e2.private('orders');
    await Promise.all([
      waitFor((ok, fail) => { c1.subscribed(ok); c1.error(fail); }, 'echo subscribed 1'),
      waitFor((ok, fail) => { c2.subscribed(ok); c2.error(fail); }, 'echo subscribed 2'),
    ]);
    const got = waitFor((ok) => c2.listenForWhisper('typing', ok), 'whisper');
    c1.whisper('typing', { name: 'Taylor' });
    const d = await got;
    if (d.name !== 'Taylor') throw new Error('whisper ' + JSON.stringify(d));
  },
};

h.run(scenarios);
