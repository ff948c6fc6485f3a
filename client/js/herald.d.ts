// Type declarations of herald.js (@herald-push/client), the client of
// herald's client protocol v1 (docs/protocol.md). README.md next to this
// file documents the behaviour; these declarations follow it.
//
// The same declarations serve the ES module (`import Herald from`), the
// CommonJS build (`require()` returns the Herald class) and the script tag
// (a global `Herald`).

/** Any JSON value, as published and delivered. */
type HeraldJSON = string | number | boolean | null | HeraldJSON[] | { [key: string]: HeraldJSON };

declare class Herald {
  /**
   * Opens a connection to url, the /ws endpoint (ws:// or wss://), unless
   * options.connect is false.
   */
  constructor(url: string, options?: Herald.Options);

  /** The /ws endpoint given to the constructor. */
  readonly url: string;
  /** The connection's state. */
  readonly state: Herald.State;
  /** Whether the WebSocket is open. */
  readonly connected: boolean;

  /** Adds a listener; the returned function removes it. */
  on<E extends keyof Herald.Events>(event: E, fn: Herald.Events[E]): () => void;
  /** Removes a listener added with on. */
  off<E extends keyof Herald.Events>(event: E, fn: Herald.Events[E]): void;

  /**
   * Calls handler for every message of channel; the returned function
   * removes this handler and unsubscribes when it was the channel's last.
   * A null handler subscribes without one (messages reach `publication`).
   */
  subscribe<T = any>(
    channel: string,
    handler?: Herald.Handler<T> | null,
    options?: Herald.SubscribeOptions,
  ): () => void;

  /** Position of the last message seen on channel, or null. */
  position(channel: string): Herald.Position | null;

  /**
   * Publishes data to channel (where the token allows it) and resolves with
   * the message's offset; rejects with a HeraldError.
   */
  publish(channel: string, data: unknown): Promise<number>;

  /**
   * Asks the members of a presence channel: the exact count and at most
   * 100 users; rejects with a HeraldError (bad_request: the channel has no
   * presence; forbidden).
   */
  presence(channel: string): Promise<Herald.Presence>;

  /**
   * Sends an application message {"op":"msg"} to the server's handler;
   * false when the client is closed or too many commands wait.
   */
  send(data: unknown): boolean;

  /** Opens the connection (the constructor does unless options.connect is false). */
  connect(): void;
  /** Closes the connection (1000 unless told) and stops reconnecting. */
  close(code?: number, reason?: string): void;

  /** The class itself, for `const { Herald } = require(...)`. */
  static readonly Herald: typeof Herald;
}

declare namespace Herald {
  /** The client's connection state. */
  type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

  /** Error codes: the server's (docs/protocol.md) and the client's own. */
  type ErrorCode =
    | 'bad_request'
    | 'forbidden'
    | 'not_subscribed'
    | 'not_supported'
    | 'rate_limited'
    | 'unavailable'
    | 'limit'
    | 'unknown_namespace'
    | 'internal'
    | 'disconnected'
    | 'closed'
    | 'queue_full'
    | 'bad_frame'
    | 'socket'
    | 'token'
    | (string & {});

  /** The reconnect schedule; see backoffDelay. */
  interface ReconnectOptions {
    /** ms before the first attempt's jitter (default 500). */
    minDelay?: number;
    /** Cap of the delay in ms (default 30000). */
    maxDelay?: number;
    /** Growth per attempt (default 2). */
    factor?: number;
    /** Random fraction of the delay, 0..1 (default 0.5; 1 is full jitter). */
    jitter?: number;
  }

  /** A WebSocket constructor: the browser's, or Node's `ws` package. */
  interface WebSocketConstructor {
    new (url: string, protocols?: string | string[]): any;
  }

  interface Options {
    /** JWT sent as ?token=. */
    token?: string;
    /**
     * Gives a token: before the first connect when token is absent, after a
     * 4001 close, and after a connection that failed before opening.
     */
    tokenProvider?: () => string | Promise<string>;
    /** Channels subscribed at once, without a handler. */
    channels?: string[];
    /** The reconnect schedule, or false never to reconnect. */
    reconnect?: ReconnectOptions | false;
    /** ms of silence before a ping (default 20000; 0: never). */
    pingInterval?: number;
    /** ms to wait for any frame after the ping (default 10000). */
    pongTimeout?: number;
    /** The WebSocket implementation (default globalThis.WebSocket). */
    WebSocket?: WebSocketConstructor;
    /** false waits for connect() (default true). */
    connect?: boolean;
  }

  /** A position in a channel: the offset of a message and its epoch. */
  interface Position {
    offset: number;
    epoch: string;
  }

  interface SubscribeOptions {
    /** Starts after this position (one the app stored). */
    since?: Position;
  }

  /** What comes with every delivered message. */
  interface Meta {
    channel: string;
    offset: number;
    /** null for a channel not subscribed with subscribe (e.g. user:<sub>). */
    epoch: string | null;
  }

  type Handler<T = any> = (data: T, meta: Meta) => void;

  interface OpenEvent {
    reconnected: boolean;
  }
  interface SubscribedEvent {
    channel: string;
    offset: number;
    epoch: string;
    /** The members when it subscribed, for a presence channel. */
    presence?: PresenceList;
  }
  /** A presence channel's members: count is exact, users at most 100. */
  interface PresenceList {
    count: number;
    users: string[];
  }
  /** The answer of presence(). */
  interface Presence extends PresenceList {
    channel: string;
  }
  /** A user joined (its first connection) or left (its last) a presence channel. */
  interface PresenceEvent {
    channel: string;
    user: string;
  }
  interface RecoveredEvent {
    channel: string;
    /** false: messages were lost, refetch the channel's state. */
    recovered: boolean;
    offset: number;
    epoch: string;
  }
  interface CloseEvent {
    code: number;
    reason: string;
    willReconnect: boolean;
  }
  interface ReconnectEvent {
    /** 1 for the first attempt after a drop. */
    attempt: number;
    /** ms until the attempt. */
    delay: number;
    /** The close code that caused it, or 'token' / 'connect'. */
    cause: number | string | null;
  }

  /** The listeners of each event. */
  interface Events {
    open: (ev: OpenEvent) => void;
    subscribed: (ev: SubscribedEvent) => void;
    recovered: (ev: RecoveredEvent) => void;
    join: (ev: PresenceEvent) => void;
    leave: (ev: PresenceEvent) => void;
    publication: (data: any, meta: Meta) => void;
    message: (data: any) => void;
    close: (ev: CloseEvent) => void;
    reconnect: (ev: ReconnectEvent) => void;
    error: (err: Error | HeraldError) => void;
    state: (state: State) => void;
  }

  /** An error with the protocol's code ("forbidden", ...). */
  class HeraldError extends Error {
    constructor(code: ErrorCode, message?: string, channel?: string);
    readonly name: 'HeraldError';
    readonly code: ErrorCode;
    /** The channel the error is about, when there is one. */
    readonly channel?: string;
  }

  /**
   * The wait in ms before reconnect attempt `attempt` (from 0):
   * base = min(maxDelay, minDelay·factor^attempt), of which the fraction
   * jitter is random. random (0..1) defaults to Math.random().
   */
  function backoffDelay(attempt: number, opts: Required<ReconnectOptions>, random?: number): number;

  /**
   * The reconnect delay in ms a server advises in a close reason
   * ("reconnect_after_ms=N", a draining node's 1001), or null without one.
   */
  function reconnectAdvice(reason: string): number | null;

  const CLOSE_TOKEN_EXPIRED: 4001;
  const CLOSE_KICKED: 4003;

  /** Any JSON value. */
  type JSONValue = HeraldJSON;
}

export = Herald;
export as namespace Herald;
