/*!
 * herald.js: the browser (and Node) client of herald's client protocol v1.
 *
 * One file, no build step, no dependencies. Load it with
 *   <script src="/herald.js"></script>        (defines window.Herald)
 * or in Node with
 *   const Herald = require('./herald.js');     (pass {WebSocket: require('ws')})
 *
 * It keeps one WebSocket open, resubscribes after every reconnect with the
 * position of the last message seen on each channel, so that messages missed
 * while disconnected arrive exactly once and in order, and never delivers an
 * offset twice. See README.md next to this file for the whole API.
 */
(function (root, factory) {
  'use strict';
  const Herald = factory();
  if (typeof module === 'object' && module && module.exports) {
    module.exports = Herald;
    module.exports.Herald = Herald;
  } else if (root) {
    root.Herald = Herald;
  }
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  'use strict';

  const OPEN = 1;

  // Close codes of docs/protocol.md.
  const CLOSE_NORMAL = 1000;
  const CLOSE_TOKEN_EXPIRED = 4001;
  const CLOSE_KICKED = 4003;
  // The code this client closes with when the server stops answering pings.
  const CLOSE_PING_TIMEOUT = 4000;

  // How many commands may wait for a connection before publish/send fail.
  const MAX_QUEUED = 1000;
  // A connection that lived this long resets the backoff.
  const STABLE_AFTER = 5000;

  const DEFAULTS = {
    reconnect: { minDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5 },
    pingInterval: 20000,
    pongTimeout: 10000,
  };

  /** HeraldError carries the protocol's error code ("forbidden", ...). */
  class HeraldError extends Error {
    constructor(code, message, channel) {
      super(message || code);
      this.name = 'HeraldError';
      this.code = code;
      if (channel !== undefined) this.channel = channel;
    }
  }

  /**
   * backoffDelay returns the wait before reconnect attempt `attempt`
   * (0-based): min(maxDelay, minDelay * factor^attempt), of which the
   * fraction `jitter` is random. jitter 1 is "full jitter" (0..base),
   * 0.5 keeps at least half of the base, 0 is none.
   */
  function backoffDelay(attempt, opts, random) {
    const r = random === undefined ? Math.random() : random;
    const base = Math.min(opts.maxDelay, opts.minDelay * Math.pow(opts.factor, attempt));
    const j = Math.max(0, Math.min(1, opts.jitter));
    return Math.round(base * (1 - j) + base * j * r);
  }

  /**
   * reconnectAdvice reads the delay a server puts in a close reason,
   * "reconnect_after_ms=N" (docs/protocol.md): N, or null without one.
   */
  function reconnectAdvice(reason) {
    const m = /reconnect_after_ms=(\d+)/.exec(reason || '');
    if (!m) return null;
    const ms = Number(m[1]);
    return ms <= 3600000 ? ms : null;
  }

  class Herald {
    /**
     * @param {string} url ws:// or wss:// address of herald's /ws endpoint.
     * @param {object} [options] see README.md.
     */
    constructor(url, options) {
      const o = options || {};
      this.url = url;
      this._token = o.token || null;
      this._tokenProvider = o.tokenProvider || null;
      this._reconnect = Object.assign({}, DEFAULTS.reconnect, o.reconnect || {});
      this._reconnectEnabled = o.reconnect !== false;
      this._pingInterval = o.pingInterval === undefined ? DEFAULTS.pingInterval : o.pingInterval;
      this._pongTimeout = o.pongTimeout === undefined ? DEFAULTS.pongTimeout : o.pongTimeout;
      this._WS = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
      if (!this._WS) throw new Error('herald: no WebSocket implementation (pass options.WebSocket)');

      this._listeners = new Map(); // event -> Set(fn)
      this._channels = new Map(); // name -> {handlers:Set, offset, epoch}
      this._seen = new Map(); // channel -> last offset, for channels not subscribed here
      this._pending = new Map(); // id -> {resolve, reject}
      this._queue = []; // commands waiting for a connection
      this._nextId = 1;
      this._ws = null;
      this._state = 'idle';
      this._attempt = 0;
      this._timers = { reconnect: null, ping: null, pong: null };
      this._openedAt = 0;
      this._closed = false;
      this._refreshToken = false;
      this._wsOpened = false;

      for (const ch of o.channels || []) this._channel(ch);
      if (o.connect !== false) this.connect();
    }

    /** state is one of idle, connecting, open, reconnecting, closed. */
    get state() { return this._state; }

    /** connected reports whether the WebSocket is open. */
    get connected() { return this._state === 'open'; }

    /**
     * on adds a listener for an event: message, publication, subscribed,
     * recovered, join, leave, open, close, reconnect, error or state (see
     * README.md). It returns a function that removes it.
     */
    on(event, fn) {
      let set = this._listeners.get(event);
      if (!set) this._listeners.set(event, (set = new Set()));
      set.add(fn);
      return () => set.delete(fn);
    }

    /** off removes a listener added with on. */
    off(event, fn) {
      const set = this._listeners.get(event);
      if (set) set.delete(fn);
    }

    /**
     * subscribe calls handler(data, meta) for every message of channel,
     * meta being {channel, offset, epoch}. It returns a function that
     * removes this handler (and unsubscribes when it was the last one).
     * options.since {offset, epoch} starts from a position the app kept.
     */
    subscribe(channel, handler, options) {
      const existed = this._channels.has(channel);
      const ch = this._channel(channel);
      if (options && options.since && ch.offset === null) {
        ch.offset = options.since.offset;
        ch.epoch = options.since.epoch;
      }
      if (handler) ch.handlers.add(handler);
      if (!existed && this._state === 'open') this._sendSub(channel, ch);
      return () => {
        if (handler) ch.handlers.delete(handler);
        if (ch.handlers.size === 0 && this._channels.get(channel) === ch) {
          this._channels.delete(channel);
          if (this._state === 'open') this._write({ op: 'unsub', channel: channel });
        }
      };
    }

    /**
     * position returns {offset, epoch} of the last message seen on channel
     * (or of the subscription), or null.
     */
    position(channel) {
      const ch = this._channels.get(channel);
      if (!ch || ch.offset === null) return null;
      return { offset: ch.offset, epoch: ch.epoch };
    }

    /**
     * publish sends data to channel (where the token allows it) and resolves
     * with the message's offset. It rejects with a HeraldError on a refusal,
     * or when the connection drops before the server answered (the message
     * may or may not have been published then).
     */
    publish(channel, data) {
      return new Promise((resolve, reject) => {
        if (this._closed) return reject(new HeraldError('closed', 'herald: client is closed'));
        const id = this._nextId++;
        this._pending.set(id, { resolve: resolve, reject: reject });
        if (!this._enqueue({ op: 'pub', channel: channel, data: data, id: id })) {
          this._pending.delete(id);
          reject(new HeraldError('queue_full', 'herald: too many commands waiting for a connection'));
        }
      });
    }

    /**
     * presence resolves with {channel, count, users} of a presence channel
     * (docs/protocol.md, "Presence"): the exact count and at most 100
     * users. It rejects with a HeraldError (bad_request for a channel
     * without presence, forbidden), or when the connection drops first.
     */
    presence(channel) {
      return new Promise((resolve, reject) => {
        if (this._closed) return reject(new HeraldError('closed', 'herald: client is closed'));
        const id = this._nextId++;
        this._pending.set(id, { resolve: resolve, reject: reject });
        if (!this._enqueue({ op: 'presence', channel: channel, id: id })) {
          this._pending.delete(id);
          reject(new HeraldError('queue_full', 'herald: too many commands waiting for a connection'));
        }
      });
    }

    /**
     * send sends an application message {"op":"msg","data":data} to the
     * server's handler. Messages sent while disconnected wait for the next
     * connection. It returns false when the client is closed or the
     * waiting queue is full.
     */
    send(data) {
      if (this._closed) return false;
      return this._enqueue({ op: 'msg', data: data });
    }

    /** connect opens the connection (the constructor does unless options.connect is false). */
    connect() {
      if (this._closed || this._ws || this._timers.reconnect) return;
      this._open();
    }

    /** close closes the connection with 1000 and stops reconnecting. */
    close(code, reason) {
      if (this._closed) return;
      this._closed = true;
      this._clearTimers();
      const ws = this._ws;
      this._ws = null;
      this._rejectPending(new HeraldError('closed', 'herald: client is closed'));
      this._queue = [];
      if (ws && ws !== PENDING) {
        detach(ws);
        try { ws.close(code || CLOSE_NORMAL, reason || ''); } catch (e) { /* already closing */ }
      }
      this._setState('closed');
      this._emit('close', { code: code || CLOSE_NORMAL, reason: reason || '', willReconnect: false });
    }

    // --- connection -------------------------------------------------------

    async _open() {
      this._setState(this._attempt === 0 && !this._openedAt ? 'connecting' : 'reconnecting');
      // A placeholder keeps connect() from opening twice while a token is fetched.
      this._ws = PENDING;
      if (this._tokenProvider && (this._refreshToken || !this._token)) {
        try {
          this._token = await this._tokenProvider();
          this._refreshToken = false;
        } catch (err) {
          this._ws = null;
          if (this._closed) return;
          this._emit('error', new HeraldError('token', 'herald: tokenProvider failed: ' + errText(err)));
          this._scheduleReconnect(null, 'token');
          return;
        }
      }
      if (this._closed) return;
      let ws;
      try {
        ws = new this._WS(this._connectURL());
      } catch (err) {
        this._ws = null;
        this._emit('error', err);
        this._scheduleReconnect(null, 'connect');
        return;
      }
      this._ws = ws;
      this._wsOpened = false;
      ws.onopen = () => this._onOpen(ws);
      ws.onmessage = (ev) => this._onMessage(ws, ev.data);
      ws.onerror = (ev) => this._emit('error', ev && ev.error ? ev.error : new HeraldError('socket', 'herald: WebSocket error'));
      ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    }

    _connectURL() {
      if (!this._token) return this.url;
      const sep = this.url.indexOf('?') >= 0 ? '&' : '?';
      return this.url + sep + 'token=' + encodeURIComponent(this._token);
    }

    _onOpen(ws) {
      if (ws !== this._ws) return;
      const reconnected = this._openedAt !== 0;
      this._wsOpened = true;
      this._openedAt = Date.now();
      this._setState('open');
      for (const [name, ch] of this._channels) this._sendSub(name, ch);
      const queue = this._queue;
      this._queue = [];
      for (const cmd of queue) this._write(cmd);
      this._armPing();
      this._emit('open', { reconnected: reconnected });
    }

    _onClose(ws, code, reason) {
      if (ws !== this._ws) return;
      detach(ws);
      this._ws = null;
      this._clearTimers();
      this._rejectPending(new HeraldError('disconnected', 'herald: connection lost before the reply'));
      if (this._openedAt && Date.now() - this._openedAt >= STABLE_AFTER) this._attempt = 0;
      // Our own close() detaches the socket first, so every close seen
      // here came from the server or the network.
      const again = !this._closed && this._reconnectEnabled && code !== CLOSE_KICKED;
      // A connection that never opened may have been refused for its token.
      if (!this._wsOpened && this._tokenProvider) this._refreshToken = true;
      this._emit('close', { code: code, reason: reason || '', willReconnect: again });
      if (!again) {
        this._closed = true;
        this._setState('closed');
        this._queue = [];
        return;
      }
      if (code === CLOSE_TOKEN_EXPIRED) {
        this._refreshToken = true;
        if (this._tokenProvider) {
          this._scheduleReconnect(0, code);
          return;
        }
      }
      const advised = reconnectAdvice(reason);
      if (advised !== null) {
        // The server said when to come back (a draining node's 1001):
        // that, plus a jitter of our own, instead of the backoff.
        this._attempt = 0;
        this._scheduleReconnect(advised + Math.round(Math.random() * this._reconnect.minDelay), code);
        return;
      }
      this._scheduleReconnect(null, code);
    }

    _scheduleReconnect(delay, cause) {
      if (this._closed) return;
      const attempt = this._attempt++;
      const wait = delay === null || delay === undefined ? backoffDelay(attempt, this._reconnect) : delay;
      this._setState('reconnecting');
      this._emit('reconnect', { attempt: attempt + 1, delay: wait, cause: cause });
      this._timers.reconnect = setTimeout(() => {
        this._timers.reconnect = null;
        this._open();
      }, wait);
    }

    // _drop abandons a connection that stopped answering and reconnects
    // without waiting for a close handshake that may never come.
    _drop(ws, code, reason) {
      if (ws !== this._ws) return;
      detach(ws);
      try {
        if (typeof ws.terminate === 'function') ws.terminate();
        else ws.close(code, reason);
      } catch (e) { /* nothing to do */ }
      this._onClose(ws, code, reason);
    }

    // --- liveness ---------------------------------------------------------

    // _armPing (re)starts the silence timer; it runs after every frame.
    _armPing() {
      if (!this._pingInterval) return;
      clearTimeout(this._timers.ping);
      clearTimeout(this._timers.pong);
      this._timers.pong = null;
      const ws = this._ws;
      this._timers.ping = setTimeout(() => {
        if (ws !== this._ws) return;
        this._write({ op: 'ping' });
        this._timers.pong = setTimeout(() => this._drop(ws, CLOSE_PING_TIMEOUT, 'pong timeout'), this._pongTimeout);
      }, this._pingInterval);
    }

    _clearTimers() {
      for (const k of Object.keys(this._timers)) {
        clearTimeout(this._timers[k]);
        this._timers[k] = null;
      }
    }

    // --- messages ---------------------------------------------------------

    _onMessage(ws, raw) {
      if (ws !== this._ws) return;
      this._armPing();
      let m;
      try {
        m = JSON.parse(typeof raw === 'string' ? raw : String(raw));
      } catch (err) {
        this._emit('error', new HeraldError('bad_frame', 'herald: frame is not JSON'));
        return;
      }
      if (m === null || typeof m !== 'object') return;
      switch (m.op) {
        case undefined:
          if (typeof m.channel === 'string' && typeof m.offset === 'number') this._onPublication(m);
          return;
        case 'msg':
          this._emit('message', m.data);
          return;
        case 'subscribed':
          this._onSubscribed(m);
          return;
        case 'published':
          this._settle(m.id, null, m.offset);
          return;
        case 'presence':
          this._settle(m.id, null, { channel: m.channel, count: m.count, users: m.users || [] });
          return;
        case 'join':
        case 'leave':
          if (this._channels.has(m.channel)) this._emit(m.op, { channel: m.channel, user: m.user });
          return;
        case 'error': {
          const err = new HeraldError(m.code, m.message, m.channel);
          if (!this._settle(m.id, err)) this._emit('error', err);
          return;
        }
        default:
          return; // pong, unsubscribed, and ops of later versions
      }
    }

    _onSubscribed(m) {
      const ch = this._channels.get(m.channel);
      if (!ch) return;
      const asked = ch.asked;
      ch.asked = false;
      if (m.recovered === true && asked) {
        // The backlog follows; offsets keep their meaning.
        ch.epoch = m.epoch;
      } else {
        // A fresh subscription, or a gap the server could not fill: count
        // from the channel's current offset (a new epoch restarts offsets).
        ch.offset = m.offset;
        ch.epoch = m.epoch;
      }
      const ev = { channel: m.channel, offset: m.offset, epoch: m.epoch };
      if (m.presence) ev.presence = { count: m.presence.count, users: m.presence.users || [] };
      this._emit('subscribed', ev);
      if (asked) this._emit('recovered', { channel: m.channel, recovered: m.recovered === true, offset: m.offset, epoch: m.epoch });
    }

    _onPublication(m) {
      const ch = this._channels.get(m.channel);
      const last = ch ? ch.offset : this._seen.get(m.channel);
      if (last !== null && last !== undefined && m.offset <= last) return; // seen already
      const meta = { channel: m.channel, offset: m.offset, epoch: ch ? ch.epoch : null };
      if (ch) {
        ch.offset = m.offset;
        for (const h of Array.from(ch.handlers)) this._call(h, m.data, meta);
      } else {
        this._seen.set(m.channel, m.offset);
      }
      this._emit('publication', m.data, meta);
    }

    // --- plumbing ---------------------------------------------------------

    _channel(name) {
      let ch = this._channels.get(name);
      if (!ch) {
        ch = { handlers: new Set(), offset: null, epoch: null, asked: false };
        this._channels.set(name, ch);
      }
      return ch;
    }

    _sendSub(name, ch) {
      const cmd = { op: 'sub', channel: name };
      if (ch.offset !== null && ch.epoch !== null) cmd.since = { offset: ch.offset, epoch: ch.epoch };
      ch.asked = !!cmd.since;
      this._write(cmd);
    }

    _enqueue(cmd) {
      if (this._state === 'open') {
        this._write(cmd);
        return true;
      }
      if (this._queue.length >= MAX_QUEUED) return false;
      this._queue.push(cmd);
      return true;
    }

    _write(cmd) {
      const ws = this._ws;
      if (!ws || ws === PENDING || ws.readyState !== OPEN) {
        if (cmd.op === 'pub' || cmd.op === 'msg' || cmd.op === 'presence') this._queue.push(cmd);
        return;
      }
      try {
        ws.send(JSON.stringify(cmd));
      } catch (err) {
        this._settle(cmd.id, err);
        this._emit('error', err);
      }
    }

    _settle(id, err, value) {
      if (id === undefined || id === null) return false;
      const p = this._pending.get(id);
      if (!p) return false;
      this._pending.delete(id);
      if (err) p.reject(err); else p.resolve(value);
      return true;
    }

    _rejectPending(err) {
      const pending = this._pending;
      this._pending = new Map();
      // Commands still queued were never sent: they stay queued (unless closed).
      const queued = new Set(this._queue.map((c) => c.id));
      for (const [id, p] of pending) {
        if (queued.has(id) && !this._closed) this._pending.set(id, p);
        else p.reject(err);
      }
    }

    _setState(s) {
      if (this._state === s) return;
      this._state = s;
      this._emit('state', s);
    }

    _emit(event, a, b) {
      const set = this._listeners.get(event);
      if (!set || set.size === 0) {
        if (event === 'error' && typeof console !== 'undefined' && this._listeners.size === 0) {
          // Nobody listens at all: do not fail silently.
          console.warn('herald:', a && a.message ? a.message : a);
        }
        return;
      }
      for (const fn of Array.from(set)) this._call(fn, a, b);
    }

    _call(fn, a, b) {
      try {
        fn(a, b);
      } catch (err) {
        // A throwing handler must not break delivery to the others.
        if (typeof console !== 'undefined') console.error('herald: handler threw', err);
      }
    }
  }

  const PENDING = { readyState: 0, placeholder: true };

  function detach(ws) {
    if (!ws || ws === PENDING) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  function errText(err) {
    return err && err.message ? err.message : String(err);
  }

  Herald.HeraldError = HeraldError;
  Herald.backoffDelay = backoffDelay;
  Herald.reconnectAdvice = reconnectAdvice;
  Herald.CLOSE_TOKEN_EXPIRED = CLOSE_TOKEN_EXPIRED;
  Herald.CLOSE_KICKED = CLOSE_KICKED;
  return Herald;
});
