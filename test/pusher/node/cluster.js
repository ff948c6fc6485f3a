// Pusher scenarios across two herald nodes sharing NATS, with clients
// nobody here wrote: pusher-js on each node and Pusher's Node server
// library on the other node's API. Usage:
//   node cluster.js HOST PORT_A PORT_B KEY SECRET APP_ID API_PORT_A API_PORT_B
// Prints one JSON line: {"ok":bool, "results":{scenario:true|"error"}}.
'use strict';
const { harness } = require('./harness');
const PusherServer = require('pusher');

const [host, portA, portB, key, secret, appId, apiA, apiB] = process.argv.slice(2);
const backendB = new PusherServer({ appId, key, secret, host, port: apiB, useTLS: false });
const backendA = new PusherServer({ appId, key, secret, host, port: apiA, useTLS: false });
// Cross-node events wait on the broker too: a longer bound than on one node.
const h = harness({ host, key, secret, timeoutMs: 15000 });
const { waitFor, subscribed } = h;
const client = (port, userId) => h.client(port, { userId });

const scenarios = {
  // An event triggered through node B's API reaches a client on node A.
  async eventAcross() {
    const a = client(portA, 'e1');
    const ch = a.subscribe('news');
    await subscribed(ch);
    const got = waitFor((ok) => ch.bind('tick', ok), 'the event on node A');
    await backendB.trigger('news', 'tick', { n: 1 });
    const d = await got;
    if (!d || d.n !== 1) throw new Error('event ' + JSON.stringify(d));
  },
  // A client event from node A reaches a client on node B.
  async clientEventAcross() {
    const a = client(portA, 'c1'), b = client(portB, 'c2');
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
    const a = client(portA, 'u1');
    const pa = a.subscribe('presence-lobby');
    await subscribed(pa);
    const added = waitFor((ok) => pa.bind('pusher:member_added', ok), 'member_added on node A');
    const b = client(portB, 'u2');
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

h.run(scenarios);
