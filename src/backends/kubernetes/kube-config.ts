/**
 * Finds the API server and credentials: in-cluster (the pod's service account), else a
 * kubeconfig (`register({ kubernetes: { kubeconfig } })`, `KUBECONFIG` with files joined
 * by `:`, else `~/.kube/config`). Kubeconfig files are YAML, read with the optional `yaml`
 * package, loaded only here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { execPlugin, NO_CREDENTIALS, staticToken, tokenFile, type Credentials } from './credentials';
import { type ResolvedKubernetesOptions } from './connection';

/** Where a pod's service account is mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The npm package that reads kubeconfig files (an optional dependency of this package). */
export const YAML_PACKAGE = 'yaml';

/** What the HTTP client needs to reach one API server. */
export interface ClusterAccess {
  /** `https://host:port` (or `http://` for local servers), without a trailing `/`. */
  readonly server: string;
  /** The namespace of targets that name none. */
  readonly namespace: string;
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName: string | undefined;
  readonly credentials: Credentials;
  /** Where this came from, for messages (`in-cluster`, `kubeconfig /x context y`). */
  readonly source: string;
}

/** What the loader reads from the environment (replaceable in tests). */
export interface KubeEnvironment {
  readonly env: NodeJS.ProcessEnv;
  readonly serviceAccountDir: string;
  readonly home: string;
}

const defaultEnvironment = (): KubeEnvironment => ({ env: process.env, serviceAccountDir: SERVICE_ACCOUNT_DIR, home: homedir() });

/** Loads the cluster access for a connection; throws an Error a user can act on. */
export function loadClusterAccess(options: ResolvedKubernetesOptions, environment: KubeEnvironment = defaultEnvironment()): ClusterAccess {
  const { env, serviceAccountDir } = environment;
  const explicit = options.kubeconfig !== undefined || options.context !== undefined;
  if (!explicit && env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, 'token'))) {
    return inClusterAccess(env, serviceAccountDir);
  }
  // An empty KUBECONFIG counts as unset, as in kubectl.
  const paths = (options.kubeconfig ?? (env.KUBECONFIG || join(environment.home, '.kube', 'config'))).split(':').filter(p => p !== '');
  return kubeconfigAccess(paths, options.context);
}

function inClusterAccess(env: NodeJS.ProcessEnv, dir: string): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const caPath = join(dir, 'ca.crt');
  const namespacePath = join(dir, 'namespace');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace: existsSync(namespacePath) ? readFileSync(namespacePath, 'utf8').trim() || 'default' : 'default',
    ca: existsSync(caPath) ? readFileSync(caPath) : undefined,
    cert: undefined,
    key: undefined,
    insecureSkipTlsVerify: false,
    tlsServerName: undefined,
    credentials: tokenFile(join(dir, 'token')),
    source: 'in-cluster service account',
  };
}

type Named = { name?: unknown; [kind: string]: unknown };
interface KubeconfigFile { path: string; doc: Record<string, unknown> }

function parseYaml(text: string, path: string): Record<string, unknown> {
  let yaml: { parse(text: string): unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    yaml = require(YAML_PACKAGE) as { parse(text: string): unknown };
  } catch {
    throw new Error(`reading the kubeconfig ${path} needs the '${YAML_PACKAGE}' package (an optional dependency of grpc-etcd-lb): npm install ${YAML_PACKAGE}`);
  }
  let doc: unknown;
  try {
    doc = yaml.parse(text);
  } catch (err) {
    throw new Error(`kubeconfig ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`kubeconfig ${path} is not a YAML mapping`);
  return doc as Record<string, unknown>;
}

/** Finds `name` in the `kind` list (clusters, users, contexts) of the files; the first file that has it wins (client-go's merge rule). */
function findNamed(files: readonly KubeconfigFile[], list: string, name: string): { value: Record<string, unknown>; file: KubeconfigFile } | undefined {
  const inner = list.slice(0, -1);
  for (const file of files) {
    const entries = file.doc[list];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as Named[]) {
      if (entry?.name === name && entry[inner] !== null && typeof entry[inner] === 'object') return { value: entry[inner] as Record<string, unknown>, file };
    }
  }
  return undefined;
}

function kubeconfigAccess(paths: readonly string[], contextName: string | undefined): ClusterAccess {
  const files: KubeconfigFile[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    files.push({ path, doc: parseYaml(readFileSync(path, 'utf8'), path) });
  }
  if (files.length === 0) {
    throw new Error(`no Kubernetes connection: not in a pod (KUBERNETES_SERVICE_HOST unset or no service-account token) and no kubeconfig at ${paths.join(':') || '(none)'}; ` +
      'set KUBECONFIG or call register({ kubernetes: { kubeconfig: \'/path/to/config\' } })');
  }
  const where = files.map(f => f.path).join(':');
  const name = contextName ?? files.map(f => f.doc['current-context']).find((c): c is string => typeof c === 'string' && c !== '');
  if (name === undefined) throw new Error(`kubeconfig ${where} has no current-context: pass register({ kubernetes: { context } })`);
  const context = findNamed(files, 'contexts', name);
  if (!context) throw new Error(`kubeconfig ${where} has no context '${name}'`);
  const clusterName = context.value.cluster;
  const cluster = typeof clusterName === 'string' ? findNamed(files, 'clusters', clusterName) : undefined;
  if (!cluster) throw new Error(`kubeconfig ${where}: context '${name}' names cluster ${JSON.stringify(clusterName)}, which is not defined`);
  const server = cluster.value.server;
  if (typeof server !== 'string' || !/^https?:\/\/[^/]+/.test(server)) {
    throw new Error(`kubeconfig ${where}: cluster '${String(clusterName)}' needs a server like https://host:6443, got ${JSON.stringify(server)}`);
  }
  const userName = context.value.user;
  const user = typeof userName === 'string' ? findNamed(files, 'users', userName) : undefined;
  const u = user?.value ?? {};
  const fileOrData = (entry: Record<string, unknown>, file: KubeconfigFile, field: string): Buffer | undefined => {
    const data = entry[`${field}-data`];
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
    const path = entry[field];
    if (typeof path !== 'string' || path === '') return undefined;
    const full = isAbsolute(path) ? path : resolvePath(dirname(file.path), path);
    try {
      return readFileSync(full);
    } catch (err) {
      throw new Error(`kubeconfig ${file.path}: cannot read ${field} ${full}: ${(err as Error).message}`);
    }
  };
  const namespace = context.value.namespace;
  return {
    server: server.replace(/\/+$/, ''),
    namespace: typeof namespace === 'string' && namespace !== '' ? namespace : 'default',
    ca: fileOrData(cluster.value, cluster.file, 'certificate-authority'),
    cert: user ? fileOrData(u, user.file, 'client-certificate') : undefined,
    key: user ? fileOrData(u, user.file, 'client-key') : undefined,
    insecureSkipTlsVerify: cluster.value['insecure-skip-tls-verify'] === true,
    tlsServerName: typeof cluster.value['tls-server-name'] === 'string' ? cluster.value['tls-server-name'] : undefined,
    credentials: user ? userCredentials(u, user.file) : NO_CREDENTIALS,
    source: `kubeconfig ${where} context '${name}'`,
  };
}

function userCredentials(user: Record<string, unknown>, file: KubeconfigFile): Credentials {
  if (typeof user.token === 'string' && user.token !== '') return staticToken(user.token);
  if (typeof user.tokenFile === 'string' && user.tokenFile !== '') {
    return tokenFile(isAbsolute(user.tokenFile) ? user.tokenFile : resolvePath(dirname(file.path), user.tokenFile));
  }
  const exec = user.exec as Record<string, unknown> | undefined;
  if (exec && typeof exec === 'object') {
    if (typeof exec.command !== 'string' || exec.command === '') throw new Error(`kubeconfig ${file.path}: exec needs a command`);
    const args = Array.isArray(exec.args) ? exec.args.map(String) : [];
    const env = Array.isArray(exec.env)
      ? (exec.env as Array<{ name?: unknown; value?: unknown }>).filter(e => typeof e?.name === 'string').map(e => ({ name: String(e.name), value: String(e.value ?? '') }))
      : [];
    const apiVersion = typeof exec.apiVersion === 'string' ? exec.apiVersion : 'client.authentication.k8s.io/v1';
    const command = exec.command.includes('/') && !isAbsolute(exec.command) ? resolvePath(dirname(file.path), exec.command) : exec.command;
    return execPlugin({ command, args, env, apiVersion });
  }
  if (user['auth-provider'] !== undefined) {
    throw new Error(`kubeconfig ${file.path}: auth-provider users are not supported (removed from kubectl in 1.26); use an exec credential plugin or a token`);
  }
  return NO_CREDENTIALS;
}
