/** Helpers shared by the registry tests: an independent observer of etcd, a suite's etcd with one, and lease-ID formatting. */
import { acquireEtcdClient, type EtcdClientLease } from '../../../src/backends/etcd/connection';
import { startEtcd, type EtcdServer } from '../../support/etcd';

export interface ObservedKey {
  value: string;
  /** Decimal lease ID, '0' when none. */
  lease: string;
  modRevision: number;
}

/**
 * A client of its own (pool name 'test-observer', with our fast fault handling),
 * so what the test sees does not depend on the registration's client.
 */
export class EtcdObserver {
  private readonly lease: EtcdClientLease;

  constructor(hosts: string[]) {
    this.lease = acquireEtcdClient({ hosts }, 'test-observer');
  }

  /** The key as etcd has it now, or undefined; rejects when etcd does not answer within `timeoutMs`. */
  async get(key: string, timeoutMs = 1000): Promise<ObservedKey | undefined> {
    const res = await this.lease.client.kv.range({ key: Buffer.from(key) }, { deadline: new Date(Date.now() + timeoutMs) });
    const kv = res.kvs[0];
    return kv && { value: kv.value.toString('utf8'), lease: kv.lease, modRevision: Number(kv.mod_revision) };
  }

  /** Remaining TTL of a lease in seconds; -1 when etcd does not know it. */
  async leaseTtl(leaseId: string): Promise<number> {
    const res = await this.lease.client.leaseClient.leaseTimeToLive({ ID: leaseId }, { deadline: new Date(Date.now() + 1000) });
    return Number(res.TTL);
  }

  close(): void {
    this.lease.release();
  }
}

/** etcdctl prints and takes lease IDs in hex; etcd3 gives decimal strings. */
export function leaseHex(decimalId: string): string {
  return BigInt(decimalId).toString(16);
}

/** A suite's etcd and an observer of it, started in `before` and destroyed in `after` (read them in tests and hooks). */
export function useObservedEtcd(): { etcd: EtcdServer; observer: EtcdObserver } {
  const suite = {} as { etcd: EtcdServer; observer: EtcdObserver };
  before(async () => {
    suite.etcd = await startEtcd();
    suite.observer = new EtcdObserver(suite.etcd.endpoints);
  });
  after(async () => {
    suite.observer?.close();
    await suite.etcd?.destroy();
  });
  return suite;
}
