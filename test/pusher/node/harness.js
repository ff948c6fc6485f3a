// What the Pusher scenario scripts share: pusher-js clients that sign
// their own channel and user auth (as an app's auth endpoint would),
// waiting for events with a bound, and the run that prints one JSON line
// {"ok":bool, "results":{scenario:true|"error"}}.
'use strict';
const crypto = require('crypto');
const PusherMod = require('pusher-js');
const Pusher = PusherMod.default || PusherMod;

// harness returns the helpers for an app's key and secret on host.
function harness({ host, key, secret, timeoutMs = 8000 }) {
  const sign = (s) => crypto.createHmac('sha256', secret).update(s).digest('hex');

  // The application's auth endpoint, done in-process: what a backend's
  // /broadcasting/auth answers.
  function channelAuth(userId) {
    return {
      customHandler: ({ socketId, channelName }, cb) => {
        if (channelName.startsWith('presence-')) {
          const channel_data = JSON.stringify({ user_id: userId, user_info: { name: 'user ' + userId } });
          cb(null, { auth: key + ':' + sign(socketId + ':' + channelName + ':' + channel_data), channel_data });
        } else {
          cb(null, { auth: key + ':' + sign(socketId + ':' + channelName) });
        }
      },
    };
  }

  const clients = [];
  // client connects pusher-js to port as userId (opts.key: another key).
  function client(port, opts = {}) {
    const userId = opts.userId || 'anon';
    const c = new Pusher(opts.key || key, {
      cluster: 'mt1', wsHost: host, wsPort: Number(port), forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
      channelAuthorization: opts.channelAuthorization || channelAuth(userId),
      userAuthentication: {
        customHandler: ({ socketId }, cb) => {
          const user_data = JSON.stringify({ id: userId });
          cb(null, { auth: key + ':' + sign(socketId + '::user::' + user_data), user_data });
        },
      },
    });
    clients.push(c);
    return c;
  }
  function track(c) { clients.push(c); return c; }

  function waitFor(fn, what) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for ' + what)), timeoutMs);
      fn((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
    });
  }
  const subscribed = (ch) => waitFor((ok, fail) => {
    ch.bind('pusher:subscription_succeeded', ok);
    ch.bind('pusher:subscription_error', (e) => fail(new Error('subscription_error ' + JSON.stringify(e))));
  }, 'subscription of ' + ch.name);

  // run runs the scenarios in order, prints the JSON line and exits.
  async function run(scenarios) {
    const results = {};
    let ok = true;
    for (const [name, fn] of Object.entries(scenarios)) {
      try { await fn(); results[name] = true; } catch (e) { ok = false; results[name] = String(e && e.message || e); }
    }
    for (const c of clients) { try { c.disconnect(); } catch (_) {} }
    process.stdout.write(JSON.stringify({ ok, results }) + '\n');
    process.exit(ok ? 0 : 1);
  }

  return { Pusher, sign, client, track, waitFor, subscribed, run };
}

module.exports = { harness };
