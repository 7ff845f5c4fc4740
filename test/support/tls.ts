/**
 * Throwaway TLS material for tests, made with the `openssl` command line: a CA,
 * a server certificate it signed for `localhost` and 127.0.0.1 (gRPC clients connect
 * by name: an IP as TLS ServerName is not permitted, RFC 6066),
 * and an unrelated CA (a client trusting it must refuse the server). EC P-256
 * keys: generated in milliseconds. Everything lives in one temp directory,
 * removed by `remove()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  readonly dir: string;
  /** PEM files. */
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly otherCaFile: string;
  /** The CA certificate as a Buffer (what etcd3's `credentials.rootCertificate` takes). */
  readonly ca: Buffer;
  readonly otherCa: Buffer;
  /** Removes the directory. Idempotent. */
  remove(): void;
}

/** Path of the openssl binary: `$OPENSSL_BIN` or `openssl` on PATH. */
export const OPENSSL_BIN = process.env.OPENSSL_BIN ?? 'openssl';

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Generates the CA, the server certificate for `127.0.0.1`/`localhost`, and the unrelated CA. */
export function generateTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (args: string[]): void => {
    try {
      execFileSync(OPENSSL_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(`tls: openssl ${args[0]} failed: ${(err as Error).message} ${stderr}`);
    }
  };
  const selfSignedCa = (name: string): void => {
    openssl(['req', '-x509', ...KEY_ARGS, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  };
  selfSignedCa('test-ca');
  selfSignedCa('other-ca');
  openssl(['req', '-new', ...KEY_ARGS, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
  ].join('\n'));
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('test-ca.crt'), '-CAkey', file('test-ca.key'), '-CAcreateserial',
    '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext')]);
  return {
    dir,
    caFile: file('test-ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    otherCaFile: file('other-ca.crt'),
    ca: readFileSync(file('test-ca.crt')),
    otherCa: readFileSync(file('other-ca.crt')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
