/**
 * A small Kubernetes API client over Node's `http`/`https`: a JSON GET, and a watch
 * stream read as JSON lines. One keep-alive agent per cluster; every request bounded.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { type ClusterAccess } from './kube-config';

/** A watch stream line past this size is refused (a resolver must stay bounded in memory). */
export const MAX_WATCH_LINE_BYTES = 64 * 1024 * 1024;
/** A watch that sends nothing (no event, no bookmark) for this long is ended and started again from its resourceVersion. */
export const WATCH_IDLE_TIMEOUT_MS = 90_000;

/** An API answer other than 2xx, with the `Status` it carried. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    /** The HTTP status, or the `code` of an ERROR event's Status. */
    readonly code: number,
    /** The Status `reason` (`Forbidden`, `Expired`, `Gone`, …), or ''. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A `Status` object (or anything) as an error. */
export function statusError(httpStatus: number, body: unknown): KubeApiError {
  const s = body !== null && typeof body === 'object' ? body as Record<string, unknown> : {};
  const code = typeof s.code === 'number' ? s.code : httpStatus;
  const reason = typeof s.reason === 'string' ? s.reason : '';
  const message = typeof s.message === 'string' ? s.message : typeof body === 'string' && body !== '' ? body.slice(0, 300) : `HTTP ${httpStatus}`;
  return new KubeApiError(code, reason, message);
}

export interface WatchHandlers {
  /** The server accepted the watch (2xx headers). */
  onOpen?(): void;
  /** One parsed line (`{ type, object }`). */
  onEvent(event: unknown): void;
  /** Once: the stream ended (`error` undefined: the server closed it normally). */
  onEnd(error: Error | undefined): void;
}

export interface WatchStream {
  abort(): void;
}

export class KubeClient {
  private readonly agent: http.Agent;
  private readonly secure: boolean;

  constructor(readonly access: ClusterAccess) {
    this.secure = access.server.startsWith('https:');
    this.agent = this.secure
      ? new https.Agent({
        keepAlive: true,
        ca: access.ca,
        cert: access.cert,
        key: access.key,
        rejectUnauthorized: !access.insecureSkipTlsVerify,
        servername: access.tlsServerName,
      })
      : new http.Agent({ keepAlive: true });
  }

  get label(): string {
    return this.access.server;
  }

  /** GET `path` as JSON; a 401 reads the credentials again and tries once more. Rejects with `KubeApiError` on a non-2xx answer. */
  async getJson(path: string, timeoutMs: number): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const { status, text } = await this.get(path, timeoutMs);
      if (status >= 200 && status < 300) {
        try {
          return JSON.parse(text) as unknown;
        } catch (err) {
          throw new Error(`GET ${path}: the answer is not JSON (${(err as Error).message})`);
        }
      }
      if (status === 401 && attempt === 0) {
        this.access.credentials.invalidate();
        continue;
      }
      throw statusError(status, parseMaybe(text));
    }
  }

  /** Opens a watch; events and the end arrive through `handlers`. */
  watch(path: string, handlers: WatchHandlers): WatchStream {
    let ended = false;
    let request: http.ClientRequest | undefined;
    let aborted = false;
    const end = (error: Error | undefined): void => {
      if (ended) return;
      ended = true;
      request?.destroy();
      if (!aborted) handlers.onEnd(error);
    };
    this.access.credentials.authorization().then(authorization => {
      if (aborted) return;
      request = this.request(path, authorization, response => {
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          readBody(response, text => {
            if (status === 401) this.access.credentials.invalidate();
            end(statusError(status, parseMaybe(text)));
          });
          return;
        }
        handlers.onOpen?.();
        response.setEncoding('utf8');
        let buffered = '';
        response.on('data', (chunk: string) => {
          buffered += chunk;
          let newline = buffered.indexOf('\n');
          while (newline >= 0 && !ended) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            newline = buffered.indexOf('\n');
            if (line === '') continue;
            let event: unknown;
            try {
              event = JSON.parse(line);
            } catch (err) {
              end(new Error(`watch ${path}: a line is not JSON (${(err as Error).message})`));
              return;
            }
            handlers.onEvent(event);
          }
          if (buffered.length > MAX_WATCH_LINE_BYTES) end(new Error(`watch ${path}: a line exceeds ${MAX_WATCH_LINE_BYTES} bytes`));
        });
        response.on('end', () => end(undefined));
        response.on('error', err => end(err));
        response.on('aborted', () => end(new Error('the API server closed the watch stream mid-message')));
      });
      request.setTimeout(WATCH_IDLE_TIMEOUT_MS, () => end(new Error(`watch idle for ${WATCH_IDLE_TIMEOUT_MS} ms`)));
      request.on('error', err => end(err));
      request.end();
    }, (err: unknown) => end(err as Error));
    return {
      abort: () => {
        aborted = true;
        ended = true;
        request?.destroy();
      },
    };
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  private async get(path: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    const authorization = await this.access.credentials.authorization();
    return new Promise((resolve, reject) => {
      const request = this.request(path, authorization, response => {
        readBody(response, text => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      });
      request.setTimeout(timeoutMs, () => request.destroy(new Error(`GET ${this.label}${path}: no answer within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end();
    });
  }

  private request(path: string, authorization: string | undefined, onResponse: (response: http.IncomingMessage) => void): http.ClientRequest {
    const url = new URL(path, `${this.access.server}/`);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    const options: http.RequestOptions = { method: 'GET', agent: this.agent, headers };
    const request = this.secure ? https.request(url, options, onResponse) : http.request(url, options, onResponse);
    request.on('socket', socket => socket.setKeepAlive(true, 10_000));
    return request;
  }
}

function readBody(response: http.IncomingMessage, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  response.on('data', (chunk: Buffer) => chunks.push(chunk));
  response.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
}

function parseMaybe(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
