/**
 * ZooKeeper's `Registration`: an ephemeral Curator node in its own session (its timeout
 * is the TTL; ending it removes the node at once). Replaces a stale node of another
 * session, as Curator does, so watchers see a dead owner's node go now.
 */
import { tracer } from '../../common/grpc-experimental';
import { RegistrationCore } from '../../discovery/registration-core';
import { type LostReason } from '../../discovery/registration-events';
import { type ResolvedRegistrationOptions } from '../../discovery/registration-options';
import { connectionString, type ResolvedZookeeperOptions } from './connection';
import { encodeCuratorInstance, instanceId } from './curator-codec';
import { servicePath } from './target';
import { hex, zkErrorCode, type ZkEvent, type ZkStat } from './zk-client';
import { ZkSession, type SessionEvent } from './zk-session';

const trace = tracer('zookeeper_registry');

/** Floor and ceiling of the time one ZooKeeper operation may take. */
const MIN_OP_TIMEOUT_MS = 500;
const MAX_OP_TIMEOUT_MS = 5_000;
/** Longest sleep of an idle loop (it is woken by every event anyway). */
const IDLE_MS = 60_000;

export class ZkRegistration extends RegistrationCore {
  readonly key: string;
  /** The instance id, the last path segment. */
  readonly id: string;

  private readonly session: ZkSession;
  private readonly opTimeoutMs: number;
  private readonly registrationTimeUTC = Date.now();
  /** The session our node was created in; undefined when the node must be (re-)created. */
  private nodeSession: string | undefined;
  private lostSession: string | undefined;
  private pendingLoss: { reason: LostReason; session: string } | undefined;
  private unsubscribe: () => void;
  private readonly nodeWatcher = (event: ZkEvent): void => this.onNodeEvent(event);

  constructor(options: ResolvedRegistrationOptions, private readonly zookeeper: ResolvedZookeeperOptions) {
    super(options, text => trace(text));
    this.id = instanceId(options.service, options.address);
    this.key = `${servicePath(this.zookeeper.basePath, options.service)}/${this.id}`;
    this.opTimeoutMs = Math.min(MAX_OP_TIMEOUT_MS, Math.max(MIN_OP_TIMEOUT_MS, this.ttlMs / 3));
    try {
      this.session = new ZkSession(this.zookeeper, this.ttlMs, text => trace(text));
      this.begin(`zk|${connectionString(this.zookeeper)}|${this.key}`, `'${this.key}' is already registered by this process on this ZooKeeper`);
    } catch (err) {
      this.metrics?.close();
      throw err;
    }
    this.unsubscribe = this.session.on(event => this.onSession(event));
    this.session.start();
  }

  /** The session the node lives in (`0x…`); undefined when none holds it. */
  get leaseId(): string | undefined {
    return this.nodeSession;
  }

  /** The session timeout the server granted (ms): how long the node outlives this process. */
  get sessionTimeoutMs(): number {
    return this.session.negotiatedTimeoutMs;
  }

  protected override get registryName(): string {
    return 'ZooKeeper';
  }

  protected registerTimeoutMessage(timeoutMs: number): string {
    const last = this.lastError === undefined ? '' : ` (last error: ${(this.lastError as Error)?.message ?? String(this.lastError)})`;
    const state = this.session.connected ? '' : ' (never connected)';
    return `registerEndpoint: ZooKeeper at ${connectionString(this.zookeeper)} did not accept '${this.key}' within ${timeoutMs} ms${state}${last}`;
  }

  private onSession(event: SessionEvent): void {
    if (event.type === 'expired') {
      if (this.nodeSession !== undefined) this.pendingLoss = { reason: event.byUs ? 'unreachable' : 'lease-lost', session: event.sessionId };
      this.nodeSession = undefined;
    } else if (event.type === 'connected' && event.newSession && this.nodeSession !== undefined && this.nodeSession !== event.sessionId) {
      this.pendingLoss = { reason: 'lease-lost', session: this.nodeSession };
      this.nodeSession = undefined;
    }
    this.wakeLoop(true);
  }

  private onNodeEvent(event: ZkEvent): void {
    if (this.closing) return;
    if (event.type === this.session.lib.Event.NODE_DELETED && this.nodeSession !== undefined) {
      trace(`${this.key}: node deleted while session ${this.nodeSession} lives`);
      this.pendingLoss = { reason: 'key-deleted', session: this.nodeSession };
      this.nodeSession = undefined;
    } else if (this.nodeSession !== undefined) {
      // Data changed by someone else, or a created event: look again (and re-arm the watch).
      this.watchNode();
    }
    this.wakeLoop(true);
  }

  protected async step(): Promise<void> {
    if (this.pendingLoss) {
      const { reason, session } = this.pendingLoss;
      this.pendingLoss = undefined;
      this.lostSession = session;
      this.markLost(reason, session);
    }
    if (!this.session.connected) {
      this.operation = 'connect';
      await this.sleep(IDLE_MS, true);
      return;
    }
    if (this.nodeSession === undefined) {
      this.operation = 'register';
      await this.establish();
    } else if (this.writtenGeneration < this.valueGeneration) {
      this.operation = 'put';
      await this.rewrite();
    } else {
      await this.sleep(IDLE_MS, true);
    }
  }

  private data(): Buffer {
    return Buffer.from(encodeCuratorInstance({
      service: this.service, id: this.id, address: this.address, ...this.value, registrationTimeUTC: this.registrationTimeUTC,
    }));
  }

  /** Creates our ephemeral node in the current session (parents as needed), replacing another session's. */
  private async establish(): Promise<void> {
    const sessionId = this.session.sessionId as string;
    const generation = this.valueGeneration;
    const { lib } = this.session;
    const parent = this.key.slice(0, this.key.lastIndexOf('/'));
    await this.session.call<string>('mkdir', this.opTimeoutMs, (client, done) => client.mkdirp(parent, (err, p) => done(err, p)));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.session.call<string>('create', this.opTimeoutMs, (client, done) =>
          client.create(this.key, this.data(), lib.CreateMode.EPHEMERAL, (err, p) => done(err, p)));
        break;
      } catch (err) {
        if (zkErrorCode(err) !== lib.Exception.NODE_EXISTS || attempt >= 3) throw err;
      }
      const [, stat] = await this.session.call<[Buffer | null, ZkStat]>('read', this.opTimeoutMs, (client, done) =>
        client.getData(this.key, undefined, (err, d, s) => done(err, [d, s])));
      if (hex(stat.ephemeralOwner) === sessionId) {
        // Ours already (an earlier create whose answer was lost): bring its data up to date.
        await this.session.call<ZkStat>('put', this.opTimeoutMs, (client, done) => client.setData(this.key, this.data(), -1, (err, s) => done(err, s)));
        break;
      }
      // A stale node of another session (a restart of this process within the old session's timeout): replace it.
      trace(`${this.key}: replacing a node of session ${hex(stat.ephemeralOwner)}`);
      await this.session.call<void>('remove', this.opTimeoutMs, (client, done) => client.remove(this.key, stat.version, err => done(err)))
        .catch((err: unknown) => {
          if (zkErrorCode(err) !== lib.Exception.NO_NODE && zkErrorCode(err) !== lib.Exception.BAD_VERSION) throw err;
        });
    }
    if (this.closing || this.session.sessionId !== sessionId) return;
    this.nodeSession = sessionId;
    this.valueWritten(generation);
    this.watchNode();
    const kept = this.lostSession === sessionId;
    this.markRegistered(sessionId, kept);
    if (this.currentState === 'registered' && !kept) trace(`${this.key}: session timeout ${this.sessionTimeoutMs} ms (asked ${this.ttlMs})`);
  }

  private async rewrite(): Promise<void> {
    const generation = this.valueGeneration;
    try {
      await this.session.call<ZkStat>('put', this.opTimeoutMs, (client, done) => client.setData(this.key, this.data(), -1, (err, s) => done(err, s)));
    } catch (err) {
      if (zkErrorCode(err) === this.session.lib.Exception.NO_NODE && this.nodeSession !== undefined) {
        this.pendingLoss = { reason: 'key-deleted', session: this.nodeSession };
        this.nodeSession = undefined;
        return;
      }
      throw err;
    }
    this.valueWritten(generation);
  }

  /** Arms a watch on our node (exists: fires on delete and data change). */
  private watchNode(): void {
    const sessionId = this.nodeSession;
    this.session.call<ZkStat | null>('watch', this.opTimeoutMs, (client, done) =>
      client.exists(this.key, this.nodeWatcher, (err, s) => done(err, s)))
      .then(stat => {
        if (stat === null && this.nodeSession === sessionId && sessionId !== undefined && !this.closing) {
          this.pendingLoss = { reason: 'key-deleted', session: sessionId };
          this.nodeSession = undefined;
          this.wakeLoop(true);
        }
      }, (err: unknown) => {
        if (!this.closing) this.reportError('watch', err);
      });
  }

  protected async deregister(deadline: number): Promise<void> {
    this.unsubscribe();
    if (this.nodeSession === undefined || !this.session.connected) return;
    try {
      await this.session.call<void>('remove', Math.max(1, deadline - Date.now()), (client, done) => client.remove(this.key, -1, err => done(err)));
      trace(`${this.key}: closed, node removed`);
    } catch (err) {
      if (zkErrorCode(err) !== this.session.lib.Exception.NO_NODE) this.reportError('close', err);
    }
  }

  protected release(): void {
    // Ending the session removes the node too, should the remove above have failed.
    this.session.close();
  }
}
