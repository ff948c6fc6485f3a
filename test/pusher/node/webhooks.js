// One scenario whose webhooks the Go test checks: pusher-js subscribes to
// a presence channel (channel_occupied, member_added), a second user joins
// (member_added), sends a client event (client_event), leaves
// (member_removed), then the first unsubscribes (member_removed,
// channel_vacated). Usage:
//   node webhooks.js HOST PORT KEY SECRET
// Prints one JSON line: {"ok":true, "sender": socket id of the client event's sender}
// or {"ok":false, "error": "..."}.
'use strict';
const crypto = require('crypto');
const PusherMod = require('pusher-js');
const Pusher = PusherMod.default || PusherMod;

const [host, port, key, secret] = process.argv.slice(2);
const sign = (s) => crypto.createHmac('sha256', secret).update(s).digest('hex');
const channel = 'presence-hooks';

function client(userId) {
  return new Pusher(key, {
    cluster: 'mt1', wsHost: host, wsPort: Number(port), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        const channel_data = JSON.stringify({ user_id: userId, user_info: { name: 'user ' + userId } });
        cb(null, { auth: key + ':' + sign(socketId + ':' + channelName + ':' + channel_data), channel_data });
      },
    },
  });
}

function waitFor(fn, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for ' + what)), 8000);
    fn((v) => { clearTimeout(t); resolve(v); });
  });
}
const subscribed = (ch) => waitFor((ok) => ch.bind('pusher:subscription_succeeded', ok), 'subscription of ' + ch.name);

(async () => {
  const a = client('w1'), b = client('w2');
  try {
    const pa = a.subscribe(channel);
    await subscribed(pa);
    const added = waitFor((ok) => pa.bind('pusher:member_added', ok), 'member_added');
    const pb = b.subscribe(channel);
    await subscribed(pb);
    await added;
    const got = waitFor((ok) => pa.bind('client-wave', ok), 'client-wave');
    pb.trigger('client-wave', { n: 1 });
    await got;
    const removed = waitFor((ok) => pa.bind('pusher:member_removed', ok), 'member_removed');
    const sender = b.connection.socket_id;
    b.unsubscribe(channel);
    await removed;
    a.unsubscribe(channel);
    process.stdout.write(JSON.stringify({ ok: true, sender }) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
  }
  // Disconnect after the unsubscribe has gone out.
  setTimeout(() => { a.disconnect(); b.disconnect(); process.exit(0); }, 100);
})();
