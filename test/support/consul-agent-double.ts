/**
 * A test double of one Consul agent (dev mode: agent and catalog in one process), written
 * from Consul's HTTP API docs because no Consul can be installed here. It is not Consul:
 * it implements what the backend relies on, with Consul's semantics where they bite —
 * `PUT /v1/agent/service/register|deregister`, `PUT /v1/agent/check/pass|warn|fail|update/<id>`
 * (404 for an unknown check), TTL checks that go critical when not passed in time and
 * `DeregisterCriticalServiceAfter` (reaped by a periodic reaper, with Consul's 1-minute
 * floor unless told), `PUT /v1/catalog/register|deregister` (instances on other nodes, as
 * Go tools write them), `GET /v1/health/service/<svc>` with `passing`, repeatable `tag`,
 * `dc` and blocking `index`/`wait` (wait/16 jitter, optional spurious early returns),
 * `X-Consul-Index`, ACL tokens (`X-Consul-Token` or `Authorization: Bearer`; 403 bodies,
 * reads filtered with `X-Consul-Results-Filtered-By-ACLs`), an outage (the listener stops,
 * state and TTL clocks go on) and a restart that forgets everything and restarts the index low.
 */
import * as http from 'node:http';
import { type AddressInfo } from 'node:net';
import { seededRandom } from './wait';

export type CheckStatus = 'passing' | 'warning' | 'critical';

/** What a token may do: `service` read/write (write implies read), `node` read. */
export interface AclGrant {
  service?: 'read' | 'write';
  node?: 'read';
}

export interface ConsulAgentDoubleOptions {
  /** Defaults to 'dc1'. */
  datacenter?: string;
  /** This agent's node. Defaults to 'node-1' at 127.0.0.1. */
  nodeName?: string;
  nodeAddress?: string;
  /** ACLs on (default policy deny): tokens and their grants; `anonymous` is the grant without a token. Defaults to ACLs off. */
  acl?: { tokens: Record<string, AclGrant>; anonymous?: AclGrant };
  /** Probability that a blocking query returns early with nothing new (Consul's docs warn it may). Defaults to 0. */
  spuriousReturnRate?: number;
  /** Seed of the jitter and spurious returns. Defaults to 1. */
  seed?: number;
  /** First raft index, and the one after `restart()`. Defaults to 100 and 5. */
  startIndex?: number;
  restartIndex?: number;
  /** How often critical services are reaped (Consul: 30 s), and the floor of `DeregisterCriticalServiceAfter` (Consul: 1 min). */
  reapIntervalMs?: number;
  minDeregisterCriticalMs?: number;
}

interface Check {
  readonly id: string;
  readonly name: string;
  readonly serviceId: string;
  status: CheckStatus;
  output: string;
  readonly ttlMs: number | undefined;
  readonly deregisterAfterMs: number | undefined;
  expiry: NodeJS.Timeout | undefined;
  criticalSinceMs: number | undefined;
  modifyIndex: number;
}

interface ServiceRecord {
  readonly node: string;
  readonly nodeAddress: string;
  definition: Record<string, unknown>;
  modifyIndex: number;
  readonly createIndex: number;
}

/** One logged HTTP request. */
export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly atMs: number;
}

/** A health answer as it left the double (for latency measurements). */
export interface HealthAnswer {
  readonly service: string;
  readonly atMs: number;
  readonly index: number;
  readonly ids: readonly string[];
}

interface Waiter {
  readonly service: string;
  readonly index: number;
  readonly answer: () => void;
}

const MAX_LOGGED = 100_000;
const live = new Set<ConsulAgentDouble>();

/** `10s`, `250ms`, `1m`, `1h` → ms (Go durations as Consul takes them); undefined when malformed. */
export function parseGoDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

export class ConsulAgentDouble {
  readonly datacenter: string;
  readonly nodeName: string;
  readonly nodeAddress: string;
  /** Every request, in order (bounded). */
  readonly requests: LoggedRequest[] = [];
  /** Every health answer sent. */
  readonly healthAnswers: HealthAnswer[] = [];
  /** Misbehaviour on demand: answer blocking queries at once, or send this `X-Consul-Index`. */
  behaviour: { instantReturns?: boolean; forceIndex?: number; spuriousReturnRate?: number } = {};
  private server: http.Server | undefined;
  private port = 0;
  private index: number;
  private nodeIndex: number;
  private readonly services = new Map<string, ServiceRecord>();
  private readonly checks = new Map<string, Check>();
  /** Index of the last change of each service name (blocking queries wait on it). */
  private readonly serviceIndex = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private readonly random: () => number;
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly options: ConsulAgentDoubleOptions = {}) {
    this.datacenter = options.datacenter ?? 'dc1';
    this.nodeName = options.nodeName ?? 'node-1';
    this.nodeAddress = options.nodeAddress ?? '127.0.0.1';
    this.index = options.startIndex ?? 100;
    this.nodeIndex = this.index;
    this.random = seededRandom(options.seed ?? 1);
    this.reaper = setInterval(() => this.reap(), options.reapIntervalMs ?? 30_000);
    live.add(this);
  }

  /** `127.0.0.1:<port>`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Starts listening (on the same port as before after `stop()`). */
  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** An outage: the listener closes and open connections (blocking queries too) are cut; state and TTL clocks go on. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.waiters.clear();
    server.closeAllConnections();
    await new Promise<void>(resolve => server.close(() => resolve()));
  }

  /** An agent restarted without its data (dev mode): everything forgotten, the index restarts low. */
  async restart(): Promise<void> {
    await this.stop();
    for (const check of this.checks.values()) clearTimeout(check.expiry);
    this.checks.clear();
    this.services.clear();
    this.serviceIndex.clear();
    this.index = this.options.restartIndex ?? 5;
    this.nodeIndex = this.index;
    await this.start();
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    for (const check of this.checks.values()) clearTimeout(check.expiry);
    await this.stop();
    live.delete(this);
  }

  /** Requests whose path starts with `prefix` since `sinceMs`. */
  count(prefix: string, sinceMs = 0): number {
    return this.requests.filter(r => r.atMs >= sinceMs && r.path.startsWith(prefix)).length;
  }

  /** Service IDs registered, with their check statuses. */
  serviceIds(): string[] {
    return [...this.services.keys()];
  }

  checkStatus(checkId: string): CheckStatus | undefined {
    return this.checks.get(checkId)?.status;
  }

  /** The stored definition of a service (as registered). */
  definition(serviceId: string): Record<string, unknown> | undefined {
    return this.services.get(serviceId)?.definition;
  }

  /** Marks a check's status as an operator or script would (e.g. critical). */
  setCheck(checkId: string, status: CheckStatus): void {
    const check = this.checks.get(checkId);
    if (check) this.setStatus(check, status, 'set by the test');
  }

  private bump(service: string): void {
    this.index++;
    this.serviceIndex.set(service, this.index);
    for (const waiter of [...this.waiters]) if (waiter.service === service) waiter.answer();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://double');
    if (this.requests.length >= MAX_LOGGED) this.requests.splice(0, MAX_LOGGED / 2);
    this.requests.push({ method: req.method ?? '', path: url.pathname + url.search, atMs: Date.now() });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        this.send(res, 400, 'Request decode failed: invalid JSON');
        return;
      }
      try {
        this.route(req, url, body, res);
      } catch (err) {
        this.send(res, 500, (err as Error).message);
      }
    });
  }

  private send(res: http.ServerResponse, status: number, body: string | object, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', ...headers });
    res.end(text);
  }

  /** The grant of the request's token; a string is the 403 body (unknown token). */
  private grant(req: http.IncomingMessage): AclGrant | string | undefined {
    const acl = this.options.acl;
    if (!acl) return undefined;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = (req.headers['x-consul-token'] as string | undefined) ?? bearer;
    if (token === undefined || token === '') return acl.anonymous ?? {};
    return acl.tokens[token] ?? 'ACL not found';
  }

  private route(req: http.IncomingMessage, url: URL, body: unknown, res: http.ServerResponse): void {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const grant = this.grant(req);
    if (typeof grant === 'string') return this.send(res, 403, grant);
    const mayWrite = (service: string): boolean => grant === undefined || grant.service === 'write' || (this.send(res, 403,
      `Permission denied: token lacks permission 'service:write' on "${service}"`), false);
    const health = /^\/v1\/health\/service\/(.+)$/.exec(path);
    if (health) {
      if (method !== 'GET') return this.send(res, 405, `method ${method} not allowed`);
      return this.health(decodeURIComponent(health[1]), url, grant, res);
    }
    if (method !== 'PUT') return this.send(res, path.startsWith('/v1/') ? 405 : 404, path.startsWith('/v1/') ? `method ${method} not allowed` : '404 page not found');
    if (path === '/v1/agent/service/register') {
      const name = (body as Record<string, unknown> | undefined)?.Name;
      if (typeof name !== 'string' || name === '') return this.send(res, 400, 'Missing service name');
      if (!mayWrite(name)) return;
      const error = this.registerService(this.nodeName, this.nodeAddress, body as Record<string, unknown>, url.searchParams.get('replace-existing-checks') === 'true');
      return error ? this.send(res, 400, error) : this.send(res, 200, '');
    }
    const deregister = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(path);
    if (deregister) {
      const id = decodeURIComponent(deregister[1]);
      const record = this.services.get(id);
      if (!record) return this.send(res, 404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      if (!mayWrite(record.definition.Name as string)) return;
      this.removeService(id);
      return this.send(res, 200, '');
    }
    const checkUpdate = /^\/v1\/agent\/check\/(pass|warn|fail|update)\/(.+)$/.exec(path);
    if (checkUpdate) {
      const id = decodeURIComponent(checkUpdate[2]);
      const check = this.checks.get(id);
      if (!check) return this.send(res, 404, `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
      if (!mayWrite(this.services.get(check.serviceId)?.definition.Name as string)) return;
      if (check.ttlMs === undefined) return this.send(res, 500, `CheckID "${id}" does not have associated TTL`);
      const verb = checkUpdate[1];
      const update = body as { Status?: string; Output?: string } | undefined;
      const status = verb === 'pass' ? 'passing' : verb === 'warn' ? 'warning' : verb === 'fail' ? 'critical' : update?.Status;
      if (status !== 'passing' && status !== 'warning' && status !== 'critical') return this.send(res, 400, `Invalid check status: "${String(status)}"`);
      this.setStatus(check, status, verb === 'update' ? update?.Output ?? '' : url.searchParams.get('note') ?? '');
      return this.send(res, 200, '');
    }
    if (path === '/v1/catalog/register') {
      const b = body as { Node?: string; Address?: string; Service?: Record<string, unknown> } | undefined;
      if (!b?.Node || !b.Address) return this.send(res, 400, 'Must provide node and address');
      if (b.Service) {
        if (!mayWrite(String(b.Service.Service))) return;
        const error = this.registerService(b.Node, b.Address, { ...b.Service, Name: b.Service.Service }, false);
        if (error) return this.send(res, 400, error);
      }
      return this.send(res, 200, 'true');
    }
    if (path === '/v1/catalog/deregister') {
      const b = body as { Node?: string; ServiceID?: string } | undefined;
      if (b?.ServiceID && this.services.get(b.ServiceID)?.node === b.Node) this.removeService(b.ServiceID);
      return this.send(res, 200, 'true');
    }
    this.send(res, 404, '404 page not found');
  }

  /** Stores a service (agent or catalog); returns Consul's 400 text for a bad definition. */
  private registerService(node: string, nodeAddress: string, d: Record<string, unknown>, replaceChecks: boolean): string | undefined {
    const name = d.Name as string;
    const id = typeof d.ID === 'string' && d.ID !== '' ? d.ID : name;
    const port = d.Port ?? 0;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return 'Invalid Port';
    const weights = d.Weights as { Passing?: number; Warning?: number } | undefined;
    if (weights && (!Number.isInteger(weights.Passing) || (weights.Passing as number) < 1)) return 'Passing must be greater than 0';
    const meta = (d.Meta ?? {}) as Record<string, unknown>;
    if (Object.keys(meta).length > 64) return 'Node metadata cannot contain more than 64 key/value pairs';
    for (const [key, value] of Object.entries(meta)) {
      if (!/^[A-Za-z0-9_-]+$/.test(key) || key.length > 128) return `Key "${key}" has invalid characters or is too long`;
      if (key.startsWith('consul-')) return `Key prefix 'consul-' is reserved for internal use`;
      if (typeof value !== 'string' || value.length > 512) return `Value for key "${key}" must be a string of at most 512 characters`;
    }
    const definition = { ...d, ID: id, Tags: d.Tags ?? [], Meta: meta, Weights: { Passing: weights?.Passing ?? 1, Warning: weights?.Warning ?? 1 } };
    const checkDefs = (d.Check ? [d.Check] : Array.isArray(d.Checks) ? d.Checks : []) as Array<Record<string, unknown>>;
    const newChecks: Check[] = [];
    for (const [i, c] of checkDefs.entries()) {
      const ttlMs = c.TTL === undefined ? undefined : parseGoDuration(c.TTL);
      if (c.TTL !== undefined && ttlMs === undefined) return `Invalid check TTL "${String(c.TTL)}"`;
      const deregisterAfterMs = c.DeregisterCriticalServiceAfter === undefined ? undefined : parseGoDuration(c.DeregisterCriticalServiceAfter);
      const checkId = typeof c.CheckID === 'string' && c.CheckID !== '' ? c.CheckID : d.Check ? `service:${id}` : `service:${id}:${i + 1}`;
      const existing = this.checks.get(checkId);
      const status = (c.Status as CheckStatus | undefined) ?? existing?.status ?? 'critical';
      newChecks.push({
        id: checkId, name: String(c.Name ?? `Service '${name}' check`), serviceId: id, status, output: existing?.output ?? '',
        ttlMs, deregisterAfterMs, expiry: undefined, criticalSinceMs: status === 'critical' ? existing?.criticalSinceMs ?? Date.now() : undefined,
        modifyIndex: existing?.modifyIndex ?? this.index + 1,
      });
    }
    const old = this.services.get(id);
    const same = old !== undefined && JSON.stringify(old.definition) === JSON.stringify(definition) && old.node === node;
    const checksSame = newChecks.every(c => this.checks.get(c.id)?.status === c.status);
    if (same && checksSame && !replaceChecks) {
      for (const c of newChecks) this.armTtl(this.checks.get(c.id) as Check);
      return undefined;
    }
    if (replaceChecks || !old) for (const c of [...this.checks.values()]) if (c.serviceId === id) this.dropCheck(c.id);
    const next = this.index + 1;
    this.services.set(id, { node, nodeAddress, definition, modifyIndex: same ? old.modifyIndex : next, createIndex: old?.createIndex ?? next });
    for (const c of newChecks) {
      clearTimeout(this.checks.get(c.id)?.expiry);
      this.checks.set(c.id, c);
      this.armTtl(c);
    }
    this.bump(name);
    return undefined;
  }

  private removeService(id: string): void {
    const record = this.services.get(id);
    if (!record) return;
    this.services.delete(id);
    for (const c of [...this.checks.values()]) if (c.serviceId === id) this.dropCheck(c.id);
    this.bump(record.definition.Name as string);
  }

  private dropCheck(id: string): void {
    clearTimeout(this.checks.get(id)?.expiry);
    this.checks.delete(id);
  }

  /** (Re)starts a TTL check's clock: critical when not updated within TTL. */
  private armTtl(check: Check): void {
    if (check.ttlMs === undefined) return;
    clearTimeout(check.expiry);
    check.expiry = setTimeout(() => {
      if (this.checks.get(check.id) === check) this.setStatus(check, 'critical', `TTL expired (last output: ${check.output})`);
    }, check.ttlMs);
    check.expiry.unref();
  }

  private setStatus(check: Check, status: CheckStatus, output: string): void {
    const changed = check.status !== status || check.output !== output;
    check.output = output;
    if (check.status !== status) check.criticalSinceMs = status === 'critical' ? Date.now() : undefined;
    check.status = status;
    if (!output.startsWith('TTL expired')) this.armTtl(check);
    if (!changed) return;
    const service = this.services.get(check.serviceId);
    check.modifyIndex = this.index + 1;
    if (service) this.bump(service.definition.Name as string);
  }

  /** Consul's reaper: services whose check stayed critical past `DeregisterCriticalServiceAfter` (at least the floor) go. */
  private reap(): void {
    const floorMs = this.options.minDeregisterCriticalMs ?? 60_000;
    const now = Date.now();
    for (const check of [...this.checks.values()]) {
      if (check.deregisterAfterMs === undefined || check.status !== 'critical' || check.criticalSinceMs === undefined) continue;
      if (now - check.criticalSinceMs >= Math.max(floorMs, check.deregisterAfterMs)) this.removeService(check.serviceId);
    }
  }

  private health(service: string, url: URL, grant: AclGrant | undefined, res: http.ServerResponse): void {
    const params = url.searchParams;
    const dc = params.get('dc');
    if (dc !== null && dc !== this.datacenter) return this.send(res, 500, `No path to datacenter`);
    const queryIndex = Number(params.get('index') ?? '0');
    const waitMs = Math.min(parseGoDuration(params.get('wait') ?? '5m') ?? 300_000, 600_000);
    const answer = (): void => {
      this.waiters.delete(waiter);
      clearTimeout(timer);
      this.answerHealth(service, params, grant, res);
    };
    const waiter: Waiter = { service, index: queryIndex, answer };
    const current = this.serviceIndex.get(service) ?? this.nodeIndex;
    if (!(queryIndex > 0) || queryIndex < current || this.behaviour.instantReturns) return this.answerHealth(service, params, grant, res);
    const spuriousRate = this.behaviour.spuriousReturnRate ?? this.options.spuriousReturnRate ?? 0;
    const spurious = this.random() < spuriousRate;
    const delayMs = spurious ? this.random() * Math.min(waitMs, 1_000) : waitMs + this.random() * (waitMs / 16);
    const timer = setTimeout(answer, delayMs);
    timer.unref();
    this.waiters.add(waiter);
    res.on('close', () => {
      this.waiters.delete(waiter);
      clearTimeout(timer);
    });
  }

  private answerHealth(service: string, params: URLSearchParams, grant: AclGrant | undefined, res: http.ServerResponse): void {
    const tags = params.getAll('tag');
    const passing = params.has('passing') && params.get('passing') !== 'false';
    let filtered = false;
    const entries: object[] = [];
    const records = [...this.services.values()]
      .filter(r => r.definition.Name === service)
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : String(a.definition.ID) < String(b.definition.ID) ? -1 : 1));
    for (const r of records) {
      const d = r.definition;
      if (!tags.every(t => (d.Tags as string[]).includes(t))) continue;
      const checks = [...this.checks.values()].filter(c => c.serviceId === d.ID);
      if (passing && !checks.every(c => c.status === 'passing')) continue;
      if (grant !== undefined && (grant.service === undefined || grant.node === undefined)) {
        filtered = true;
        continue;
      }
      entries.push({
        Node: { ID: '', Node: r.node, Address: r.nodeAddress, Datacenter: this.datacenter, TaggedAddresses: { lan: r.nodeAddress, wan: r.nodeAddress }, Meta: {}, CreateIndex: this.nodeIndex, ModifyIndex: this.nodeIndex },
        Service: {
          ID: d.ID, Service: d.Name, Tags: d.Tags, Address: d.Address ?? '', Meta: d.Meta, Port: d.Port ?? 0, Weights: d.Weights,
          EnableTagOverride: false, CreateIndex: r.createIndex, ModifyIndex: r.modifyIndex,
        },
        Checks: [
          { Node: r.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', Type: '' },
          ...checks.map(c => ({
            Node: r.node, CheckID: c.id, Name: c.name, Status: c.status, Output: c.output, ServiceID: d.ID, ServiceName: d.Name, ServiceTags: d.Tags,
            Type: c.ttlMs === undefined ? '' : 'ttl', CreateIndex: c.modifyIndex, ModifyIndex: c.modifyIndex,
          })),
        ],
      });
    }
    const index = this.behaviour.forceIndex ?? this.serviceIndex.get(service) ?? this.nodeIndex;
    const headers: Record<string, string> = { 'x-consul-index': String(index), 'x-consul-knownleader': 'true', 'x-consul-lastcontact': '0' };
    if (filtered) headers['x-consul-results-filtered-by-acls'] = 'true';
    this.healthAnswers.push({ service, atMs: Date.now(), index, ids: entries.map(e => (e as { Service: { ID: string } }).Service.ID) });
    if (this.healthAnswers.length > MAX_LOGGED) this.healthAnswers.splice(0, MAX_LOGGED / 2);
    this.send(res, 200, entries, headers);
  }
}

/** Starts a double on a free loopback port. */
export async function startConsulAgentDouble(options: ConsulAgentDoubleOptions = {}): Promise<ConsulAgentDouble> {
  const agent = new ConsulAgentDouble(options);
  await agent.start();
  return agent;
}

/** Closes every double a test left running (root hook). */
export async function closeAllConsulAgentDoubles(): Promise<void> {
  await Promise.all([...live].map(agent => agent.close()));
}
