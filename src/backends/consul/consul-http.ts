/**
 * The few Consul HTTP API calls we make, on Node's own `http`/`https` (no client package):
 * bounded in time and size, abortable (long polls), and errors that say what answered.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { type ResolvedConsulOptions } from './connection';

/** Answers larger than this are refused (a resolver must stay bounded in memory). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface ConsulResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface ConsulRequest {
  readonly method: 'GET' | 'PUT';
  /** Path with its query, e.g. `/v1/health/service/echo?passing=true`. */
  readonly path: string;
  readonly body?: unknown;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** An HTTP answer that was not 2xx. */
export class ConsulHttpError extends Error {
  /** Always `'ConsulHttpError'`. */
  override readonly name = 'ConsulHttpError';
  constructor(readonly status: number, readonly body: string, readonly headers: http.IncomingHttpHeaders, message: string) {
    super(message);
  }
}

const agents = new Map<string, http.Agent>();

/** One keep-alive agent per (address, CA): a long poll holds one socket, other calls reuse the rest. */
function agentFor(connection: ResolvedConsulOptions): http.Agent {
  const key = `${connection.baseUrl}|${connection.ca ?? ''}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = connection.baseUrl.startsWith('https:')
      ? new https.Agent({ keepAlive: true, ca: connection.ca })
      : new http.Agent({ keepAlive: true });
    agents.set(key, agent);
  }
  return agent;
}

/** A body or header value cut for a message. */
export function snippet(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** What a failed connection means, in words naming the address. */
export function describeNetworkError(connection: ResolvedConsulOptions, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const where = connection.baseUrl;
  if (e?.code === 'ECONNREFUSED') return `nothing listens at ${where} (connection refused): is the Consul agent running there?`;
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return `${where}: host not found (${e.code})`;
  if (e?.code === 'ECONNRESET') return `${where} closed the connection (ECONNRESET)`;
  if (typeof e?.code === 'string' && e.code.startsWith('HPE_')) {
    return `${where} answered something that is not HTTP/1.1 (${e.code}): a gRPC or etcd port? Consul's HTTP API listens on 8500 by default`;
  }
  if (typeof e?.code === 'string' && /CERT|SSL|TLS|VERIFY|SIGNATURE|ISSUER/.test(e.code)) return `${where}: TLS failed (${e.code}: ${e.message}); set CONSUL_CACERT to the agent's CA`;
  return `${where}: ${e?.message ?? String(err)}`;
}

/** Sends one request; resolves with any HTTP answer, rejects on network trouble, timeout or abort. */
export function consulRequest(connection: ResolvedConsulOptions, request: ConsulRequest): Promise<ConsulResponse> {
  const url = new URL(request.path, connection.baseUrl);
  const lib = url.protocol === 'https:' ? https : http;
  const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  if (connection.token !== undefined) headers['x-consul-token'] = connection.token;
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = payload.length;
  }
  return new Promise<ConsulResponse>((resolve, reject) => {
    const req = lib.request(url, { method: request.method, headers, agent: agentFor(connection), signal: request.signal });
    const timer = setTimeout(() => req.destroy(new Error(`${connection.baseUrl} did not answer ${request.method} ${url.pathname} within ${request.timeoutMs} ms`)), request.timeoutMs);
    timer.unref();
    req.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', res => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`${connection.baseUrl}: answer to ${url.pathname} exceeds ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', err => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.end(payload);
  });
}

/** `GET /x` answered 404 by a web server that is not Consul: names what answered. */
export function notConsul(connection: ResolvedConsulOptions, what: string, response: ConsulResponse): string {
  const type = response.headers['content-type'] ?? 'no content-type';
  const server = response.headers.server ? `, server '${response.headers.server}'` : '';
  return `${connection.baseUrl} answered ${what} with HTTP ${response.status} (${type}${server}, body '${snippet(response.body, 80)}'): ` +
    'not a Consul agent\'s HTTP API; check the address (register({ consul: { address } }) or CONSUL_HTTP_ADDR)';
}
