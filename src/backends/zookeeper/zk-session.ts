/**
 * A ZooKeeper session that outlives its client objects, handling node-zookeeper-client's
 * traps: an expired client is unusable (new client, `'session'` event); expiry may go
 * unreported in a partition (disconnected past the timeout counts as expired); no read
 * timeout (a probe must answer in time, as ZooKeeper's own clients do); no handshake
 * timeout (a server that accepts the TCP connection but never answers the connect request
 * holds the client forever: a watchdog drops such a socket so the client tries again).
 */
import { hex, zkErrorCode, zookeeperLibrary, type ZkLibrary, type ZkRawClient } from './zk-client';
import { connectionString, type ResolvedZookeeperOptions } from './connection';

export type SessionEvent =
  /** Connected; `newSession` when it is not the session we had (first connect, or after expiry). */
  | { readonly type: 'connected'; readonly newSession: boolean; readonly sessionId: string }
  | { readonly type: 'disconnected' }
  /** The session is gone (server said so, or we were cut off for longer than its timeout). */
  | { readonly type: 'expired'; readonly sessionId: string; readonly byUs: boolean };

/** Delay between connection rounds over the host list (node-zookeeper-client waits a random part of it). */
const SPIN_DELAY_MS = 200;

export class ZkSession {
  readonly lib: ZkLibrary;
  private current: ZkRawClient | undefined;
  private connectedNow = false;
  private lastSessionId: string | undefined;
  /** The timeout the server granted at the last connect. */
  private lastNegotiatedMs: number | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(event: SessionEvent) => void>();
  private closed = false;
  /** Bumped per client object: callbacks of a replaced client are ignored. */
  private clientGeneration = 0;

  constructor(
    readonly connection: ResolvedZookeeperOptions,
    /** The session timeout we ask for; the server clamps it to its min/max (`negotiatedTimeoutMs`). */
    readonly requestedTimeoutMs: number,
    private readonly trace: (text: string) => void,
  ) {
    this.lib = zookeeperLibrary();
  }

  get label(): string {
    return connectionString(this.connection);
  }

  get connected(): boolean {
    return this.connectedNow;
  }

  /** The current session id (`0x…`), undefined before the first connect. */
  get sessionId(): string | undefined {
    return this.lastSessionId;
  }

  /** The timeout the server granted (before the first connect: the one asked for). */
  get negotiatedTimeoutMs(): number {
    const granted = this.connectedNow ? this.current?.getSessionTimeout() : undefined;
    return granted && granted > 0 ? granted : this.lastNegotiatedMs ?? this.requestedTimeoutMs;
  }

  /** The client object of the session now (replaced after expiry: never keep it). */
  get client(): ZkRawClient {
    if (!this.current) throw new Error('zookeeper: session not started or closed');
    return this.current;
  }

  on(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.current || this.closed) return;
    this.connectClient();
  }

  /** Ends the session (its ephemeral nodes go at once) and every timer. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.listeners.clear();
    const client = this.current;
    this.current = undefined;
    this.clientGeneration++;
    if (client) {
      client.removeAllListeners();
      client.close();
    }
  }

  /** Calls `fn` with the current client, as a promise, bounded by `timeoutMs`. */
  call<T>(what: string, timeoutMs: number, fn: (client: ZkRawClient, done: (err: Error | null, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`${what}: ZooKeeper ${this.label} did not answer within ${timeoutMs} ms${this.connectedNow ? '' : ' (not connected)'}`));
      }, timeoutMs);
      timer.unref();
      try {
        fn(this.client, (err, value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(value as T);
        });
      } catch (err) {
        settled = true;
        clearTimeout(timer);
        reject(err as Error);
      }
    });
  }

  private connectClient(): void {
    const generation = ++this.clientGeneration;
    const client = this.lib.createClient(connectionString(this.connection), {
      sessionTimeout: this.requestedTimeoutMs,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
    });
    this.current = client;
    const mine = (): boolean => generation === this.clientGeneration && !this.closed;
    client.on('connected', () => {
      if (mine()) this.onConnected(client);
    });
    client.on('connectedReadOnly', () => {
      if (mine()) this.onConnected(client);
    });
    client.on('disconnected', () => {
      if (mine()) this.onDisconnected();
    });
    client.on('expired', () => {
      if (mine()) this.expire(false);
    });
    client.on('authenticationFailed', () => {
      if (mine()) this.trace(`${this.label}: authentication failed`);
    });
    client.connect();
    this.watchHandshake();
  }

  private onConnected(client: ZkRawClient): void {
    const sessionId = hex(client.getSessionId());
    const newSession = sessionId !== this.lastSessionId;
    this.lastSessionId = sessionId;
    this.lastNegotiatedMs = client.getSessionTimeout();
    this.connectedNow = true;
    clearTimeout(this.expiryTimer);
    clearTimeout(this.handshakeTimer);
    this.expiryTimer = undefined;
    this.trace(`${this.label}: connected, ${newSession ? 'new ' : ''}session ${sessionId} (timeout ${this.lastNegotiatedMs} ms)`);
    this.scheduleProbe();
    this.emit({ type: 'connected', newSession, sessionId });
  }

  private onDisconnected(): void {
    if (!this.connectedNow) return;
    this.connectedNow = false;
    clearTimeout(this.probeTimer);
    this.trace(`${this.label}: disconnected from session ${this.lastSessionId}`);
    this.emit({ type: 'disconnected' });
    this.watchHandshake();
    // Cut off longer than the timeout: the server has expired the session, whether or not the client ever says so.
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      if (!this.connectedNow && !this.closed) this.expire(true);
    }, this.negotiatedTimeoutMs);
    this.expiryTimer.unref();
  }

  /** The session is gone: a new client, a new session. */
  private expire(byUs: boolean): void {
    const sessionId = this.lastSessionId ?? '0x0';
    this.trace(`${this.label}: session ${sessionId} expired${byUs ? ' (disconnected for longer than its timeout)' : ''}; connecting a new session`);
    this.stopTimers();
    this.connectedNow = false;
    const old = this.current;
    if (old) {
      old.removeAllListeners();
      old.close();
    }
    this.connectClient();
    this.emit({ type: 'expired', sessionId, byUs });
  }

  /** While connected: a cheap read every timeout/3 that must answer within 2/3 of the timeout. */
  private scheduleProbe(): void {
    clearTimeout(this.probeTimer);
    const timeoutMs = this.negotiatedTimeoutMs;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (!this.connectedNow || this.closed) return;
      const generation = this.clientGeneration;
      this.call<void>('probe', Math.max(200, Math.floor((timeoutMs * 2) / 3)), (client, done) => client.exists('/', undefined, err => done(err)))
        .then(() => {
          if (generation === this.clientGeneration) this.scheduleProbe();
        }, (err: unknown) => {
          if (generation !== this.clientGeneration || !this.connectedNow) return;
          if (zkErrorCode(err) !== undefined) {
            this.scheduleProbe();
            return;
          }
          this.trace(`${this.label}: no answer to a probe (${(err as Error).message}); reconnecting`);
          this.dropConnection();
        });
    }, Math.max(100, Math.floor(timeoutMs / 3)));
    this.probeTimer.unref();
  }

  /** Closes the client's socket (it reconnects with the same session), as a read timeout would. */
  private dropConnection(): void {
    const socket = rawSocket(this.current);
    if (socket !== undefined) socket.destroy();
    else this.expire(true);
  }

  /**
   * While not connected: a socket open (TCP connected) for a whole period without a connect
   * response is dropped, and node-zookeeper-client tries again. The period, timeout/3 (at
   * least 1 s), leaves room for another try before the session would count as expired.
   */
  private watchHandshake(): void {
    clearTimeout(this.handshakeTimer);
    const periodMs = Math.max(1_000, Math.floor(this.negotiatedTimeoutMs / 3));
    let seen: RawSocket | undefined;
    let seenAt = 0;
    const tick = (): void => {
      this.handshakeTimer = undefined;
      if (this.connectedNow || this.closed) return;
      const socket = rawSocket(this.current);
      if (socket === undefined || socket.readyState !== 'open') {
        seen = undefined;
      } else if (socket !== seen) {
        seen = socket;
        seenAt = Date.now();
      } else if (Date.now() - seenAt >= periodMs) {
        this.trace(`${this.label}: no answer to the connect request within ${periodMs} ms; trying again`);
        socket.destroy();
        seen = undefined;
      }
      this.handshakeTimer = setTimeout(tick, periodMs / 4);
      this.handshakeTimer.unref();
    };
    this.handshakeTimer = setTimeout(tick, periodMs / 4);
    this.handshakeTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.expiryTimer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.handshakeTimer);
    this.expiryTimer = undefined;
    this.probeTimer = undefined;
    this.handshakeTimer = undefined;
  }

  private emit(event: SessionEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.trace(`${this.label}: a session listener threw: ${(err as Error)?.message}`);
      }
    }
  }
}

interface RawSocket { readonly readyState: string; destroy(): void }

/** The client's current TCP socket (node-zookeeper-client internals; undefined if they change). */
function rawSocket(client: ZkRawClient | undefined): RawSocket | undefined {
  const socket = (client as unknown as { connectionManager?: { socket?: Partial<RawSocket> } } | undefined)?.connectionManager?.socket;
  return typeof socket?.destroy === 'function' && typeof socket.readyState === 'string' ? socket as RawSocket : undefined;
}
