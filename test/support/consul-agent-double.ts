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
import * as https from 'node:https';
import { type AddressInfo } from 'node:net';
import { ConsulCatalog, parseGoDuration, type CheckStatus } from './consul-agent-catalog';
import { seededRandom } from './wait';

export { parseGoDuration, type CheckStatus };

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
  /** Serve HTTPS with this certificate (for `https://` addresses and `CONSUL_CACERT`). Defaults to plain HTTP. */
  tls?: { cert: Buffer | string; key: Buffer | string };
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
  private readonly catalog: ConsulCatalog;
  private readonly waiters = new Set<Waiter>();
  private readonly random: () => number;
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly options: ConsulAgentDoubleOptions = {}) {
    this.datacenter = options.datacenter ?? 'dc1';
    this.nodeName = options.nodeName ?? 'node-1';
    this.nodeAddress = options.nodeAddress ?? '127.0.0.1';
    this.catalog = new ConsulCatalog(options.startIndex ?? 100, options.minDeregisterCriticalMs ?? 60_000, service => {
      for (const waiter of [...this.waiters]) if (waiter.service === service) waiter.answer();
    });
    this.random = seededRandom(options.seed ?? 1);
    this.reaper = setInterval(() => this.catalog.reap(), options.reapIntervalMs ?? 30_000);
    this.reaper.unref();
    live.add(this);
  }

  /** `127.0.0.1:<port>`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.address}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Starts listening (on the same port as before after `stop()`). */
  async start(): Promise<void> {
    if (this.server) return;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    const tls = this.options.tls;
    const server: http.Server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
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
    this.catalog.reset(this.options.restartIndex ?? 5);
    await this.start();
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    this.catalog.close();
    await this.stop();
    live.delete(this);
  }

  /** Requests whose path starts with `prefix` since `sinceMs`. */
  count(prefix: string, sinceMs = 0): number {
    return this.requests.filter(r => r.atMs >= sinceMs && r.path.startsWith(prefix)).length;
  }

  /** Service IDs registered. */
  serviceIds(): string[] {
    return this.catalog.serviceIds();
  }

  checkStatus(checkId: string): CheckStatus | undefined {
    return this.catalog.check(checkId)?.status;
  }

  /** The stored definition of a service (as registered). */
  definition(serviceId: string): Record<string, unknown> | undefined {
    return this.catalog.service(serviceId)?.definition;
  }

  /** Marks a check's status as an operator or script would (e.g. critical). */
  setCheck(checkId: string, status: CheckStatus): void {
    const check = this.catalog.check(checkId);
    if (check) this.catalog.setStatus(check, status, 'set by the test');
  }

  /** Registers a service on this agent without HTTP (bulk setup); returns Consul's 400 text for a bad one. */
  registerDirect(definition: Record<string, unknown>): string | undefined {
    return this.catalog.register(this.nodeName, this.nodeAddress, definition, false);
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
      const error = this.catalog.register(this.nodeName, this.nodeAddress, body as Record<string, unknown>, url.searchParams.get('replace-existing-checks') === 'true');
      return error ? this.send(res, 400, error) : this.send(res, 200, '');
    }
    const deregister = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(path);
    if (deregister) {
      const id = decodeURIComponent(deregister[1]);
      const record = this.catalog.service(id);
      if (!record) return this.send(res, 404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      if (!mayWrite(record.definition.Name as string)) return;
      this.catalog.deregister(id);
      return this.send(res, 200, '');
    }
    const checkUpdate = /^\/v1\/agent\/check\/(pass|warn|fail|update)\/(.+)$/.exec(path);
    if (checkUpdate) {
      const id = decodeURIComponent(checkUpdate[2]);
      const check = this.catalog.check(id);
      if (!check) return this.send(res, 404, `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
      if (!mayWrite(this.catalog.service(check.serviceId)?.definition.Name as string)) return;
      if (check.ttlMs === undefined) return this.send(res, 500, `CheckID "${id}" does not have associated TTL`);
      const verb = checkUpdate[1];
      const update = body as { Status?: string; Output?: string } | undefined;
      const status = verb === 'pass' ? 'passing' : verb === 'warn' ? 'warning' : verb === 'fail' ? 'critical' : update?.Status;
      if (status !== 'passing' && status !== 'warning' && status !== 'critical') return this.send(res, 400, `Invalid check status: "${String(status)}"`);
      this.catalog.setStatus(check, status, verb === 'update' ? update?.Output ?? '' : url.searchParams.get('note') ?? '');
      return this.send(res, 200, '');
    }
    if (path === '/v1/catalog/register') {
      const b = body as { Node?: string; Address?: string; Service?: Record<string, unknown> } | undefined;
      if (!b?.Node || !b.Address) return this.send(res, 400, 'Must provide node and address');
      if (b.Service) {
        if (!mayWrite(String(b.Service.Service))) return;
        const error = this.catalog.register(b.Node, b.Address, { ...b.Service, Name: b.Service.Service }, false);
        if (error) return this.send(res, 400, error);
      }
      return this.send(res, 200, 'true');
    }
    if (path === '/v1/catalog/deregister') {
      const b = body as { Node?: string; ServiceID?: string } | undefined;
      if (b?.ServiceID && this.catalog.service(b.ServiceID)?.node === b.Node) this.catalog.deregister(b.ServiceID);
      return this.send(res, 200, 'true');
    }
    this.send(res, 404, '404 page not found');
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
    const current = this.catalog.indexOf(service);
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
    const passing = params.has('passing') && params.get('passing') !== 'false';
    const visible = grant === undefined || (grant.service !== undefined && grant.node !== undefined);
    const { entries, filtered } = this.catalog.health(service, this.datacenter, params.getAll('tag'), passing, visible);
    const index = this.behaviour.forceIndex ?? this.catalog.indexOf(service);
    const headers: Record<string, string> = { 'x-consul-index': String(index), 'x-consul-knownleader': 'true', 'x-consul-lastcontact': '0' };
    if (filtered) headers['x-consul-results-filtered-by-acls'] = 'true';
    this.send(res, 200, entries, headers);
    this.healthAnswers.push({ service, atMs: Date.now(), index, ids: entries.map(e => (e as { Service: { ID: string } }).Service.ID) });
    if (this.healthAnswers.length > MAX_LOGGED) this.healthAnswers.splice(0, MAX_LOGGED / 2);
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
