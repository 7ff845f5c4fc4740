/**
 * A test double of the Kubernetes API server, for EndpointSlices only: no kube-apiserver can
 * be installed here. Written from the API conventions (api-conventions.md, "Efficient
 * detection of changes"; the watch and list semantics of the API reference):
 * - list `GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=…`
 *   (with `limit`/`continue`), answering an `EndpointSliceList` with `metadata.resourceVersion`;
 * - watch (`watch=true`): a chunked stream of JSON lines `{type, object}`; from a
 *   `resourceVersion`, every change after it; without one (or "0"), synthetic ADDED events
 *   for what exists, then changes; BOOKMARK events (only with `allowWatchBookmarks=true`)
 *   carrying only `metadata.resourceVersion`; `timeoutSeconds` closes the stream;
 * - one global resourceVersion counter (the real server uses etcd revisions): opaque strings
 *   to clients; a version older than the compacted history gets 410 — an ERROR event with a
 *   `Status` {code 410, reason Expired} on a watch (as the watch cache does) or HTTP 410 when
 *   `expiredAs: 'http'`; a compacted continue token is HTTP 410;
 * - 401 `Status` for a missing or unknown bearer token; 403 `Status` (the real message text)
 *   for a namespace the caller may not read;
 * - plain HTTP or TLS.
 * It also lets tests cut streams, expire watches mid-stream, and stop/restart on the same port.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { type Socket } from 'node:net';
import { type TLSSocket } from 'node:tls';

export interface EndpointSliceObject {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: { name: string; namespace: string; labels: Record<string, string>; resourceVersion?: string; uid?: string; generation?: number };
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports: Array<{ name?: string; port: number; protocol?: string }> | null;
  endpoints: Array<{
    addresses: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    zone?: string;
    nodeName?: string;
    targetRef?: { kind: string; name: string; namespace: string };
  }>;
}

export interface KubeApiDoubleOptions {
  /** Bearer tokens accepted. Defaults to none: no authentication required. */
  tokens?: string[];
  /**
   * TLS key and certificate: serves HTTPS. With `clientCa`, a client certificate it signed
   * authenticates a request (as the API server's x509 authenticator does). Defaults to plain HTTP.
   */
  tls?: { key: Buffer; cert: Buffer; clientCa?: Buffer };
  /** BOOKMARK events on every watch that allows them, every this many ms. Defaults to 0 (only `sendBookmarks()`). */
  bookmarkIntervalMs?: number;
  /** Caps a watch's `timeoutSeconds` (the server closes the stream then). Defaults to none. */
  maxWatchMs?: number;
  /** How a too-old watch resourceVersion is refused: an ERROR event (the watch cache) or HTTP 410. Defaults to 'event'. */
  expiredAs?: 'event' | 'http';
  /** Events kept for watches from an older resourceVersion; older ones are compacted. Defaults to 10,000. */
  historyLimit?: number;
  /** Listen port. Defaults to a free one. */
  port?: number;
}

interface HistoryEvent { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: EndpointSliceObject }
interface OpenWatch {
  namespace: string;
  selector: (labels: Record<string, string>) => boolean;
  bookmarks: boolean;
  response: http.ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

const SLICES_PATH = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;

/** A Kubernetes `Status` body, as the API server writes it. */
export function kubeStatus(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** Parses a label selector (`a=b,c!=d,e`, `==` too). Throws on what this double does not support (set-based selectors). */
export function parseLabelSelector(text: string): (labels: Record<string, string>) => boolean {
  const terms = text.split(',').map(t => t.trim()).filter(t => t !== '').map(term => {
    if (/\s(in|notin)\s/.test(term)) throw new Error(`unsupported selector '${term}'`);
    const ne = term.indexOf('!=');
    if (ne >= 0) return (l: Record<string, string>) => l[term.slice(0, ne)] !== term.slice(ne + 2);
    const eq = term.indexOf('=');
    if (eq >= 0) {
      const key = term.slice(0, eq);
      const value = term.slice(term[eq + 1] === '=' ? eq + 2 : eq + 1);
      return (l: Record<string, string>) => l[key] === value;
    }
    if (term.startsWith('!')) return (l: Record<string, string>) => !(term.slice(1) in l);
    return (l: Record<string, string>) => term in l;
  });
  return labels => terms.every(t => t(labels));
}

export class KubeApiServerDouble {
  private server: http.Server | https.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly objects = new Map<string, EndpointSliceObject>();
  private history: HistoryEvent[] = [];
  /** Watches from a version at or below this are refused with 410. */
  private compactedRv = 0;
  private rv = 1;
  private readonly watches = new Set<OpenWatch>();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private tokens: Set<string> | undefined;
  private readonly forbidden = new Set<string>();
  private uid = 0;
  port = 0;
  /** Requests by kind, for tests (sharing, relists). */
  readonly requests = { list: 0, watch: 0, unauthorized: 0, forbidden: 0, byClientCertificate: 0 };
  /** The `resourceVersion` of every watch request, in order. */
  readonly watchesFrom: string[] = [];
  /** `<namespace> <labelSelector>` of every list request, in order. */
  readonly lists: string[] = [];
  /** When each resourceVersion's event was first written to a watch stream (ms since epoch). */
  readonly sentAtMs = new Map<string, number>();

  constructor(private readonly options: KubeApiDoubleOptions = {}) {
    this.tokens = options.tokens ? new Set(options.tokens) : undefined;
  }

  /** `http://127.0.0.1:<port>` (or https). */
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  async start(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    const tls = this.options.tls;
    const server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, handler)
      : http.createServer(handler);
    server.on(this.options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port || this.options.port || 0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    if (this.options.bookmarkIntervalMs) {
      this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.options.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
    }
  }

  /** Stops listening and cuts every connection (an outage); the objects stay for `start()`. */
  async stop(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    this.bookmarkTimer = undefined;
    for (const watch of this.watches) clearTimeout(watch.timer);
    this.watches.clear();
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>(resolve => server.close(() => resolve()));
  }

  setTokens(tokens: string[] | undefined): void {
    this.tokens = tokens ? new Set(tokens) : undefined;
  }

  /** Requests in `namespace` get 403 (`allow` undoes it). */
  forbid(namespace: string, allow = false): void {
    if (allow) this.forbidden.delete(namespace);
    else this.forbidden.add(namespace);
  }

  /** Creates or replaces a slice (its resourceVersion is set); events go to matching watches. Returns the new resourceVersion. */
  applySlice(slice: EndpointSliceObject): string {
    const key = `${slice.metadata.namespace}/${slice.metadata.name}`;
    const old = this.objects.get(key);
    const rv = ++this.rv;
    const object: EndpointSliceObject = JSON.parse(JSON.stringify(slice)) as EndpointSliceObject;
    object.metadata.resourceVersion = String(rv);
    object.metadata.uid = old?.metadata.uid ?? `uid-${++this.uid}`;
    object.metadata.generation = (old?.metadata.generation ?? 0) + 1;
    this.objects.set(key, object);
    this.record({ rv, type: old ? 'MODIFIED' : 'ADDED', object });
    return String(rv);
  }

  deleteSlice(namespace: string, name: string): string | undefined {
    const key = `${namespace}/${name}`;
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.objects.delete(key);
    const rv = ++this.rv;
    this.record({ rv, type: 'DELETED', object: { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } } });
    return String(rv);
  }

  /** Forgets history up to now: a watch from an older version gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Ends every open watch with an ERROR event (410 Expired), as the server does when a watcher falls too far behind. */
  expireWatches(): void {
    this.compact();
    for (const watch of [...this.watches]) {
      this.write(watch, { type: 'ERROR', object: kubeStatus(410, 'Expired', `too old resource version: ${this.compactedRv - 1} (${this.compactedRv})`) });
      this.endWatch(watch);
    }
  }

  /** Cuts every watch stream abruptly (no final chunk): a dropped connection. */
  dropWatches(): void {
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      clearTimeout(watch.timer);
      watch.response.socket?.destroy();
    }
  }

  /** Ends every watch normally (as `timeoutSeconds` does). */
  closeWatches(): void {
    for (const watch of [...this.watches]) this.endWatch(watch);
  }

  /** A BOOKMARK on every watch that asked for them. */
  sendBookmarks(): void {
    for (const watch of this.watches) {
      if (watch.bookmarks) {
        this.write(watch, { type: 'BOOKMARK', object: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(this.rv) } } });
      }
    }
  }

  private record(event: HistoryEvent): void {
    this.history.push(event);
    const limit = this.options.historyLimit ?? 10_000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = dropped[dropped.length - 1].rv;
    }
    for (const watch of this.watches) {
      if (watch.namespace === event.object.metadata.namespace && watch.selector(event.object.metadata.labels)) {
        this.write(watch, { type: event.type, object: event.object }, String(event.rv));
      }
    }
  }

  private write(watch: OpenWatch, event: unknown, rv?: string): void {
    watch.response.write(`${JSON.stringify(event)}\n`);
    if (rv !== undefined && !this.sentAtMs.has(rv)) this.sentAtMs.set(rv, Date.now());
  }

  private endWatch(watch: OpenWatch): void {
    this.watches.delete(watch);
    clearTimeout(watch.timer);
    watch.response.end();
  }

  private reply(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://double');
    const byCertificate = (req.socket as TLSSocket).authorized === true;
    if (byCertificate) this.requests.byClientCertificate++;
    if (this.tokens && !byCertificate) {
      const auth = req.headers.authorization;
      const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
      if (token === undefined || !this.tokens.has(token)) {
        this.requests.unauthorized++;
        this.reply(res, 401, kubeStatus(401, 'Unauthorized', 'Unauthorized'));
        return;
      }
    }
    const match = SLICES_PATH.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      this.reply(res, 404, kubeStatus(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const namespace = decodeURIComponent(match[1]);
    const watching = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    if (this.forbidden.has(namespace)) {
      this.requests.forbidden++;
      const verb = watching ? 'watch' : 'list';
      this.reply(res, 403, kubeStatus(403, 'Forbidden',
        `endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:${namespace}:default" cannot ${verb} resource "endpointslices" in API group "discovery.k8s.io" in the namespace "${namespace}"`,
        { group: 'discovery.k8s.io', kind: 'endpointslices' }));
      return;
    }
    let selector: (labels: Record<string, string>) => boolean;
    try {
      selector = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
    } catch (err) {
      this.reply(res, 400, kubeStatus(400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`));
      return;
    }
    if (!watching) this.lists.push(`${namespace} ${url.searchParams.get('labelSelector') ?? ''}`);
    if (watching) this.watch(namespace, selector, url.searchParams, res);
    else this.list(namespace, selector, url.searchParams, res);
  }

  private matching(namespace: string, selector: (labels: Record<string, string>) => boolean): EndpointSliceObject[] {
    return [...this.objects.values()]
      .filter(o => o.metadata.namespace === namespace && selector(o.metadata.labels))
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  private list(namespace: string, selector: (labels: Record<string, string>) => boolean, params: URLSearchParams, res: http.ServerResponse): void {
    this.requests.list++;
    const limit = Number(params.get('limit') ?? '0');
    let start = 0;
    let rv = this.rv;
    let items: EndpointSliceObject[];
    const token = params.get('continue');
    if (token) {
      const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { rv: number; start: number; items: EndpointSliceObject[] };
      if (parsed.rv < this.compactedRv) {
        this.reply(res, 410, kubeStatus(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'));
        return;
      }
      ({ rv, start, items } = parsed);
    } else {
      items = this.matching(namespace, selector);
    }
    const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
    const more = limit > 0 && start + limit < items.length;
    // A real continue token is opaque and small; carrying the snapshot keeps the double's pages consistent.
    const next = more ? Buffer.from(JSON.stringify({ rv, start: start + limit, items })).toString('base64') : undefined;
    this.reply(res, 200, {
      kind: 'EndpointSliceList',
      apiVersion: 'discovery.k8s.io/v1',
      metadata: { resourceVersion: String(rv), ...(next ? { continue: next, remainingItemCount: items.length - start - limit } : {}) },
      items: page,
    });
  }

  private watch(namespace: string, selector: (labels: Record<string, string>) => boolean, params: URLSearchParams, res: http.ServerResponse): void {
    this.requests.watch++;
    const from = params.get('resourceVersion') ?? '';
    this.watchesFrom.push(from);
    const fromRv = from === '' || from === '0' ? undefined : Number(from);
    if (fromRv !== undefined && !Number.isInteger(fromRv)) {
      this.reply(res, 400, kubeStatus(400, 'BadRequest', `invalid resource version: ${from}`));
      return;
    }
    const expired = fromRv !== undefined && fromRv < this.compactedRv;
    if (expired && this.options.expiredAs === 'http') {
      this.reply(res, 410, kubeStatus(410, 'Gone', `too old resource version: ${fromRv} (${this.compactedRv})`));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const watch: OpenWatch = { namespace, selector, bookmarks: params.get('allowWatchBookmarks') === 'true', response: res, timer: undefined };
    if (expired) {
      this.write(watch, { type: 'ERROR', object: kubeStatus(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedRv})`) });
      res.end();
      return;
    }
    this.watches.add(watch);
    res.on('close', () => {
      this.watches.delete(watch);
      clearTimeout(watch.timer);
    });
    if (fromRv === undefined) {
      for (const object of this.matching(namespace, selector)) this.write(watch, { type: 'ADDED', object });
    } else {
      for (const event of this.history) {
        if (event.rv > fromRv && event.object.metadata.namespace === namespace && selector(event.object.metadata.labels)) {
          this.write(watch, { type: event.type, object: event.object }, String(event.rv));
        }
      }
    }
    const timeoutSeconds = Number(params.get('timeoutSeconds') ?? '0');
    const timeoutMs = Math.min(timeoutSeconds > 0 ? timeoutSeconds * 1000 : 1_800_000, this.options.maxWatchMs ?? Number.POSITIVE_INFINITY);
    watch.timer = setTimeout(() => this.endWatch(watch), timeoutMs);
    watch.timer.unref();
  }
}

/** An EndpointSlice of `service` in `namespace`, as the EndpointSlice controller writes one. */
export function endpointSlice(namespace: string, service: string, name: string, options: {
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  ports?: Array<{ name?: string; port: number; protocol?: string }> | null;
  endpoints: EndpointSliceObject['endpoints'];
}): EndpointSliceObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: options.addressType ?? 'IPv4',
    ports: options.ports === undefined ? [{ name: 'grpc', port: 50051, protocol: 'TCP' }] : options.ports,
    endpoints: options.endpoints,
  };
}

/** One ready (or `state`) endpoint of pod `pod` at `ip`. */
export function sliceEndpoint(ip: string, pod: string, state: 'ready' | 'terminating' | 'not-ready' | 'gone-terminating' = 'ready', zone?: string): EndpointSliceObject['endpoints'][number] {
  const conditions = {
    ready: { ready: true, serving: true, terminating: false },
    terminating: { ready: false, serving: true, terminating: true },
    'not-ready': { ready: false, serving: false, terminating: false },
    'gone-terminating': { ready: false, serving: false, terminating: true },
  }[state];
  return { addresses: [ip], conditions, ...(zone ? { zone } : {}), nodeName: `node-${pod}`, targetRef: { kind: 'Pod', name: pod, namespace: 'default' } };
}
