import { getDefaultEtcdOptions, setDefaultEtcdOptions } from '../../src/backends/etcd/connection';

/**
 * Mocha hooks for the enclosing `describe`: each test runs with no default etcd
 * connection (no `register({ etcd })`, no ETCD_ENDPOINTS), and whatever was set
 * before is restored afterwards, so tests never leak it into each other.
 */
export function withoutDefaultEtcdConnection(): void {
  let savedEnv: string | undefined;
  let savedDefault: ReturnType<typeof getDefaultEtcdOptions>;
  beforeEach(() => {
    savedEnv = process.env.ETCD_ENDPOINTS;
    delete process.env.ETCD_ENDPOINTS;
    savedDefault = getDefaultEtcdOptions();
    setDefaultEtcdOptions(undefined);
  });
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.ETCD_ENDPOINTS;
    else process.env.ETCD_ENDPOINTS = savedEnv;
    setDefaultEtcdOptions(savedDefault);
  });
}
