/**
 * One (agent, service, tags, datacenter) followed with blocking health queries, shared by
 * channels. Consul's rules: the next `index` is the last `X-Consul-Index`, reset to 0 when
 * it goes backwards or is ≤ 0; a return is not a change (the list is compared); the loop is
 * rate-limited and jittered, and backs off on errors while the last good list serves. After
 * an error the next query does not block (index 0): an agent that restarted has a lower
 * index, and blocking on the old one would hide its list until `wait` ran out.
 */
import { Backoff, equalJitter } from '../../common/backoff';
import { WarnOnce } from '../../common/warn-once';
import { DiscoveryWatch, plural } from '../../discovery/discovery-watch';
import { type DiscoveryKeyValue } from '../../discovery/endpoint-table';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { type ResolvedConsulOptions } from './connection';
import { consulRequest, describeNetworkError, notConsul, snippet, type ConsulResponse } from './consul-http';
import { decodeHealthEntry, type HealthEntry } from './health-codec';

/** How the blocking loop paces itself; the defaults suit production, tests shorten them. */
export interface BlockingQueryTiming {
  /** `wait` of each blocking query, in seconds (Consul adds up to wait/16). Defaults to 55. */
  readonly waitSeconds: number;
  /** Least time between the starts of two queries, jittered up by 20 %. Defaults to 100 ms. */
  readonly minIntervalMs: number;
  /** Cap of the extra delay after repeated early returns with nothing new (an agent that answers at once). Defaults to 2,000 ms. */
  readonly maxQuietBackoffMs: number;
  /** Delay between queries while the agent answers 403 (a token fix takes a human). Defaults to 5,000 ms. */
  readonly deniedRetryMs: number;
  /**
   * After the agent comes back (a failed query, or its index went backwards: a restart), an
   * empty answer while endpoints were served is held this long before it is believed:
   * registrations come back by themselves within their TTL. Defaults to 5,000 ms.
   */
  readonly rejoinGraceMs: number;
}

export const DEFAULT_BLOCKING_QUERY_TIMING: BlockingQueryTiming = Object.freeze({
  waitSeconds: 55,
  minIntervalMs: 100,
  maxQuietBackoffMs: 2_000,
  deniedRetryMs: 5_000,
  rejoinGraceMs: 5_000,
});

/** One ERROR line per (agent, service) for ACL and datacenter problems: they do not fix themselves. */
const errorLines = new WarnOnce();

/** The ACL rules a token needs to read a service's health. */
export function readRuleHint(service: string): string {
  return `the token needs service:read on '${service}' and node:read (ACL rules: service "${service}" { policy = "read" } and node_prefix "" { policy = "read" })`;
}

export class ConsulServiceWatch extends DiscoveryWatch {
  private index = 0;
  private controller: AbortController | undefined;
  private nextTimer: NodeJS.Timeout | undefined;
  private lastStartMs = Number.NEGATIVE_INFINITY;
  private readonly quietBackoff: Backoff;
  /** modRevision of each key as last handed to the table: unchanged entries are not serialised again. */
  private revisions = new Map<string, string>();
  /** When the agent last came back (failed query or index reset); an empty answer within the grace is held. */
  private rejoinedAtMs: number | undefined;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    service: string,
    private readonly connection: ResolvedConsulOptions,
    options: ResolvedResolverOptions,
    warn: (text: string) => void,
    private readonly timing: BlockingQueryTiming = DEFAULT_BLOCKING_QUERY_TIMING,
    private readonly random: () => number = Math.random,
  ) {
    super(service, describeConnection(connection), options, warn, decodeHealthEntry, 'consul_resolver');
    this.quietBackoff = new Backoff({ initialMs: timing.minIntervalMs, maxMs: timing.maxQuietBackoffMs, jitter: equalJitter, random });
  }

  start(): void {
    this.trace('start');
    this.query();
  }

  protected stop(): void {
    clearTimeout(this.nextTimer);
    clearTimeout(this.holdTimer);
    this.controller?.abort();
  }

  private path(): string {
    const params = new URLSearchParams({ passing: 'true' });
    for (const tag of this.connection.tags) params.append('tag', tag);
    if (this.connection.datacenter !== undefined) params.set('dc', this.connection.datacenter);
    if (this.index > 0) {
      params.set('index', String(this.index));
      params.set('wait', `${this.timing.waitSeconds}s`);
    }
    return `/v1/health/service/${encodeURIComponent(this.service)}?${params.toString()}`;
  }

  private query(): void {
    if (this.closed) return;
    const blocking = this.index > 0;
    const controller = new AbortController();
    this.controller = controller;
    this.lastStartMs = Date.now();
    const timeoutMs = blocking ? Math.ceil(this.timing.waitSeconds * 1000 * (17 / 16)) + this.options.listTimeoutMs : this.options.listTimeoutMs;
    const sentIndex = this.index;
    consulRequest(this.connection, { method: 'GET', path: this.path(), timeoutMs, signal: controller.signal }).then(
      response => {
        if (this.closed || controller.signal.aborted) return;
        try {
          this.answered(response, sentIndex);
        } catch (err) {
          // Never an unhandled rejection out of a resolver: report it and query again.
          this.failed(`reading the answer failed: ${(err as Error)?.message ?? String(err)}`);
        }
      },
      (err: unknown) => {
        if (this.closed || controller.signal.aborted) return;
        this.failed(describeNetworkError(this.connection, err));
      },
    );
  }

  private answered(response: ConsulResponse, sentIndex: number): void {
    if (response.status === 403) {
      this.denied(response);
      return;
    }
    if (response.status !== 200) {
      if (response.status === 500 && /no path to datacenter/i.test(response.body)) {
        this.failed(`the agent at ${this.connection.baseUrl} knows no datacenter '${this.connection.datacenter}' (${snippet(response.body)})`, true);
      } else if (response.headers['x-consul-index'] === undefined && response.status === 404) {
        this.failed(notConsul(this.connection, `GET /v1/health/service/${this.service}`, response), true);
      } else {
        this.failed(`${this.connection.baseUrl} answered HTTP ${response.status}: ${snippet(response.body)}`);
      }
      return;
    }
    let entries: unknown;
    try {
      entries = JSON.parse(response.body);
    } catch {
      entries = undefined;
    }
    const indexHeader = response.headers['x-consul-index'];
    if (!Array.isArray(entries) || indexHeader === undefined) {
      this.failed(notConsul(this.connection, `GET /v1/health/service/${this.service}`, response), true);
      return;
    }
    const filtered = response.headers['x-consul-results-filtered-by-acls'] === 'true';
    if (filtered && entries.length === 0) {
      this.denied(response);
      return;
    }
    if (filtered) errorLines.warn(`consul resolver: ${this.connection.baseUrl} hid some instances of '${this.service}' from this token: ${readRuleHint(this.service)}`);
    const received = Number(indexHeader);
    const previous = this.index;
    if (!(received > 0)) {
      this.trace(`X-Consul-Index ${String(indexHeader)} is not positive: next query from 0`);
      this.index = 0;
    } else if (received < previous) {
      this.trace(`X-Consul-Index went backwards (${previous} → ${received}: agent restart or snapshot restore): next query from 0`);
      this.index = 0;
      this.rejoinedAtMs = Date.now();
    } else {
      this.index = received;
    }
    this.revision = Math.max(0, received) || this.revision;
    this.resetBackoff();
    this.metrics?.listed();
    if (this.holdEmpty(entries.length)) {
      this.scheduleNext(0);
      return;
    }
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const changed = this.table.replaceAll(this.keyValues(entries as HealthEntry[]));
    if (changed || !this.hasList) {
      this.trace(`${plural(entries.length, 'passing instance')} at index ${received}`);
      this.markChanged(this.hasList ? this.options.coalesceWindowMs : 0);
    }
    // An early return with nothing new (a spurious wake-up, or an agent that does not block) slows the loop down.
    const earlyMs = this.timing.waitSeconds * 500;
    const quiet = !changed && sentIndex > 0 && received === sentIndex && Date.now() - this.lastStartMs < earlyMs;
    if (!quiet) this.quietBackoff.reset();
    this.scheduleNext(quiet ? this.quietBackoff.next() : 0);
  }

  /** Entries as the table's key/values: key `<node>/<service id>`, serialised only when their ModifyIndex moved. */
  private keyValues(entries: readonly HealthEntry[]): DiscoveryKeyValue[] {
    const revisions = new Map<string, string>();
    const kvs: DiscoveryKeyValue[] = [];
    for (const entry of entries) {
      const node = entry?.Node;
      const service = entry?.Service;
      const key = `${node?.Node ?? ''}/${service?.ID ?? service?.Service ?? ''}`;
      const serialise = (): string => JSON.stringify({ Node: { Address: node?.Address }, Service: service });
      // Without ModifyIndex (not Consul, strictly) the entry itself is its version.
      const indexed = typeof service?.ModifyIndex === 'number' && typeof node?.ModifyIndex === 'number';
      const modRevision = indexed ? `${service.ModifyIndex}/${node.ModifyIndex}` : serialise();
      revisions.set(key, modRevision);
      // The table decodes a value only when its modRevision moved; an unchanged one is not serialised.
      const value = this.revisions.get(key) === modRevision ? '' : indexed ? serialise() : modRevision;
      kvs.push({ key, modRevision, value });
    }
    this.revisions = revisions;
    return kvs;
  }

  /** True while an empty answer just after the agent came back is held (the last list serves); a timer believes it when the grace ends. */
  private holdEmpty(count: number): boolean {
    const since = this.rejoinedAtMs;
    if (count > 0 || since === undefined || !this.hasList || this.table.keyCount === 0) {
      if (count > 0) this.rejoinedAtMs = undefined;
      return false;
    }
    const leftMs = since + this.timing.rejoinGraceMs - Date.now();
    if (leftMs <= 0) {
      this.rejoinedAtMs = undefined;
      return false;
    }
    if (!this.holdTimer) {
      this.trace(`the agent came back with no passing instance: serving the last list for up to ${leftMs} ms while registrations return`);
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined;
        if (this.closed || this.rejoinedAtMs !== since) return;
        this.rejoinedAtMs = undefined;
        this.revisions.clear();
        if (this.table.replaceAll([])) this.markChanged(0);
      }, leftMs);
      this.holdTimer.unref();
    }
    return true;
  }

  private denied(response: ConsulResponse): void {
    const why = response.status === 403 ? `403 ${snippet(response.body)}` : 'every instance hidden by ACLs (X-Consul-Results-Filtered-By-ACLs)';
    const message = `consul resolver: ${this.connection.baseUrl} denied reading service '${this.service}' (${why}): ${readRuleHint(this.service)}`;
    errorLines.warn(message, `${this.label}\n${this.service}\n${why}`);
    this.metrics?.failed('list');
    this.failedBeforeFirstList(message);
    this.index = 0;
    this.scheduleNext(this.timing.deniedRetryMs);
  }

  /** A failed query: tell channels while no list was ever had, keep the last list otherwise, back off, and query from 0 next. */
  private failed(reason: string, loud = false): void {
    this.index = 0;
    if (this.hasList) this.rejoinedAtMs = Date.now();
    this.metrics?.failed(this.hasList ? 'watch' : 'list');
    const message = `consul resolver: cannot read service '${this.service}': ${reason}`;
    if (loud) errorLines.warn(message, `${this.label}\n${this.service}\n${reason.slice(0, 40)}`);
    this.failedBeforeFirstList(message);
    this.retryLater(reason, () => this.query());
  }

  /** The next query after `delayMs`, and at least `minIntervalMs` (+ up to 20 % jitter) after the last one started. */
  private scheduleNext(delayMs: number): void {
    const floorMs = this.timing.minIntervalMs * (1 + 0.2 * this.random()) - (Date.now() - this.lastStartMs);
    const waitMs = Math.max(delayMs, floorMs, 0);
    clearTimeout(this.nextTimer);
    this.nextTimer = setTimeout(() => {
      this.nextTimer = undefined;
      this.query();
    }, waitMs);
    this.nextTimer.unref();
  }
}

/** `http://127.0.0.1:8500 dc2 [tag a,b]`, for traces. */
function describeConnection(connection: ResolvedConsulOptions): string {
  const dc = connection.datacenter === undefined ? '' : ` dc ${connection.datacenter}`;
  const tags = connection.tags.length === 0 ? '' : ` tags ${connection.tags.join(',')}`;
  return `${connection.baseUrl}${dc}${tags}`;
}
