/**
 * Bearer tokens for the API server: a fixed token, a token file re-read every minute and
 * after a 401 (bound service-account tokens rotate, as client-go re-reads them), or an exec
 * credential plugin (`client.authentication.k8s.io` ExecCredential) run again when its
 * token expires or is refused.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** How often a token file is read again, as client-go does. */
export const TOKEN_FILE_REREAD_MS = 60_000;
/** An exec plugin's token is renewed this long before it expires. */
const EXEC_EXPIRY_MARGIN_MS = 10_000;
const EXEC_TIMEOUT_MS = 30_000;

export interface Credentials {
  /** The `Authorization` header value, or undefined for none. Rejects with a message a user can act on. */
  authorization(): Promise<string | undefined>;
  /** The server said 401: the next `authorization()` reads the token again. */
  invalidate(): void;
  /** Where the token comes from, for messages (`token file /var/run/…/token`). */
  readonly description: string;
}

export const NO_CREDENTIALS: Credentials = Object.freeze({
  authorization: () => Promise.resolve(undefined),
  invalidate: () => undefined,
  description: 'no credentials',
});

export function staticToken(token: string, description = 'the kubeconfig token'): Credentials {
  return { authorization: () => Promise.resolve(`Bearer ${token}`), invalidate: () => undefined, description };
}

export function tokenFile(path: string, now: () => number = Date.now): Credentials {
  let cached: { token: string; readAtMs: number } | undefined;
  return {
    description: `token file ${path}`,
    authorization: () => {
      if (!cached || now() - cached.readAtMs >= TOKEN_FILE_REREAD_MS) {
        let token: string;
        try {
          token = readFileSync(path, 'utf8').trim();
        } catch (err) {
          return Promise.reject(new Error(`cannot read the token file ${path}: ${(err as Error).message}`));
        }
        cached = { token, readAtMs: now() };
      }
      return Promise.resolve(`Bearer ${cached.token}`);
    },
    invalidate: () => {
      cached = undefined;
    },
  };
}

/** A kubeconfig user's `exec` section. */
export interface ExecConfig {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly apiVersion: string;
}

export function execPlugin(exec: ExecConfig, now: () => number = Date.now): Credentials {
  let cached: { token: string; expiresAtMs: number } | undefined;
  let running: Promise<string> | undefined;
  const run = (): Promise<string> => new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const { name, value } of exec.env) env[name] = value;
    env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
    execFile(exec.command, [...exec.args], { env, timeout: EXEC_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`exec credential plugin '${exec.command}' failed: ${err.message.trim()}${stderr ? ` (${String(stderr).trim().slice(0, 300)})` : ''}`));
        return;
      }
      let status: Record<string, unknown> | undefined;
      try {
        status = (JSON.parse(String(stdout)) as { status?: Record<string, unknown> }).status;
      } catch (parseError) {
        reject(new Error(`exec credential plugin '${exec.command}' printed no ExecCredential JSON: ${(parseError as Error).message}`));
        return;
      }
      if (typeof status?.token !== 'string' || status.token === '') {
        reject(new Error(`exec credential plugin '${exec.command}' returned no status.token (client certificates from exec plugins are not supported)`));
        return;
      }
      const expiry = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : NaN;
      cached = { token: status.token, expiresAtMs: Number.isFinite(expiry) ? expiry - EXEC_EXPIRY_MARGIN_MS : Number.POSITIVE_INFINITY };
      resolve(status.token);
    });
  });
  return {
    description: `exec credential plugin '${exec.command}'`,
    authorization: async () => {
      if (cached && now() < cached.expiresAtMs) return `Bearer ${cached.token}`;
      running ??= run().finally(() => {
        running = undefined;
      });
      return `Bearer ${await running}`;
    },
    invalidate: () => {
      cached = undefined;
    },
  };
}
