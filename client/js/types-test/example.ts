// A typed app using every part of @herald-push/client's API, installed
// from the packed tarball (see check.mjs). tsc --noEmit checks it.
import Herald, { HeraldError, backoffDelay, CLOSE_KICKED, CLOSE_TOKEN_EXPIRED } from '@herald-push/client';

interface News {
  headline: string;
}

async function fetchToken(): Promise<string> {
  return 'jwt';
}

const h = new Herald('wss://push.example.com/ws', {
  tokenProvider: fetchToken,
  channels: ['alerts'],
  reconnect: { minDelay: 250, maxDelay: 10_000, factor: 2, jitter: 1 },
  pingInterval: 20_000,
  pongTimeout: 10_000,
  connect: false,
});
const other = new Herald('ws://localhost:8080/ws', { token: 'jwt', reconnect: false, WebSocket: WebSocket });
other.close(1000, 'bye');

const unsubscribe: () => void = h.subscribe<News>('news', (data, meta) => {
  const headline: string = data.headline;
  const offset: number = meta.offset;
  const epoch: string | null = meta.epoch;
  console.log(meta.channel, offset, epoch, headline);
}, { since: { offset: 41, epoch: 'x9f' } });
h.subscribe('quiet', null);

const offs: Array<() => void> = [
  h.on('open', (ev) => console.log(ev.reconnected)),
  h.on('subscribed', (ev) => console.log(ev.channel, ev.offset, ev.epoch)),
  h.on('recovered', (ev) => {
    if (!ev.recovered) console.log('refetch', ev.channel, ev.offset, ev.epoch);
  }),
  h.on('publication', (data, meta) => console.log(data, meta.channel)),
  h.on('message', (data) => console.log(data)),
  h.on('close', (ev) => console.log(ev.code, ev.reason, ev.willReconnect)),
  h.on('reconnect', (ev) => console.log(ev.attempt, ev.delay, ev.cause)),
  h.on('state', (s: Herald.State) => console.log(s)),
  h.on('join', (ev: Herald.PresenceEvent) => console.log(ev.channel, ev.user)),
  h.on('leave', (ev) => console.log(ev.channel, ev.user)),
  h.on('subscribed', (ev) => {
    if (ev.presence) console.log(ev.presence.count, ev.presence.users.join(','));
  }),
];
const onError = (err: Error) => {
  if (err instanceof HeraldError) console.log(err.code, err.channel, err.message);
};
h.on('error', onError);
h.off('error', onError);

h.connect();
const state: Herald.State = h.state;
const connected: boolean = h.connected;
const url: string = h.url;
console.log(state, connected, url);

const pos: Herald.Position | null = h.position('news');
if (pos) console.log(pos.offset, pos.epoch);

async function post(): Promise<void> {
  try {
    const offset: number = await h.publish('chat', { text: 'hi' });
    console.log(offset);
  } catch (err) {
    if (err instanceof Herald.HeraldError && err.code === 'disconnected') console.log('maybe published');
  }
}
void post();
const queued: boolean = h.send({ action: 'incr' });
console.log(queued);

const wait: number = backoffDelay(3, { minDelay: 500, maxDelay: 30_000, factor: 2, jitter: 0.5 }, 0.5);
const codes: number[] = [CLOSE_KICKED, CLOSE_TOKEN_EXPIRED, Herald.CLOSE_KICKED, Herald.CLOSE_TOKEN_EXPIRED];
const e: HeraldError = new HeraldError('forbidden', 'not allowed', 'secret');
console.log(wait, codes, e.code, Herald.backoffDelay === backoffDelay, Herald.Herald === Herald);

for (const off of offs) off();
unsubscribe();
h.close();

// @ts-expect-error: the event name is checked
h.on('nope', () => {});
// @ts-expect-error: so is the listener's shape
h.on('recovered', (ev: { recovered: string }) => console.log(ev));

async function members(): Promise<void> {
  const p: Herald.Presence = await h.presence('room:1');
  console.log(p.channel, p.count, p.users.length);
}
void members();
