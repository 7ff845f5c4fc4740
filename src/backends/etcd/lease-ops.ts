/**
 * A registration's etcd operations, each bounded (a deadline, plus a timer for etcd3's
 * pre-call steps). Not etcd3's `Lease`: it fires `lost` from several places, and
 * re-granting on each led to several re-registration loops.
 */
import { EtcdLeaseInvalidError, type Etcd3 } from 'etcd3';
import { withTimeout as raceTimeout } from '../../discovery/registration-core';

/** Rejects with "<what>: etcd did not answer within N ms" when `promise` has not settled in time. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return raceTimeout(promise, timeoutMs, what, 'etcd');
}

function callOptions(timeoutMs: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + timeoutMs) };
}

/** Grants a lease; resolves to its ID (decimal string). */
export async function grantLease(client: Etcd3, ttlSeconds: number, timeoutMs: number): Promise<string> {
  const res = await withTimeout(client.leaseClient.leaseGrant({ TTL: ttlSeconds }, callOptions(timeoutMs)), timeoutMs, 'lease grant');
  if (res.error) throw new Error(`lease grant refused: ${res.error}`);
  return res.ID;
}

/** One keep-alive round trip; resolves to etcd's TTL: > 0 renewed, 0 gone. */
export async function keepAliveOnce(client: Etcd3, leaseId: string, timeoutMs: number): Promise<number> {
  const run = async (): Promise<number> => {
    const stream = await client.leaseClient.leaseKeepAlive(callOptions(timeoutMs));
    return new Promise<number>((resolve, reject) => {
      // Stays attached after we settle: a late stream error must not be unhandled.
      stream.on('error', (err: Error) => reject(err));
      stream.on('end', () => reject(new Error('keep-alive stream ended without an answer')));
      stream.on('data', (res: { TTL: string }) => {
        resolve(Number(res.TTL));
        // Half-close, not cancel: etcd3 counts a cancelled stream as a failure of the host.
        stream.end();
      });
      stream.write({ ID: leaseId });
    });
  };
  try {
    return await withTimeout(run(), timeoutMs, 'lease keep-alive');
  } catch (err) {
    if (err instanceof EtcdLeaseInvalidError) return 0;
    throw err;
  }
}

/** Writes `key` = `value` under `leaseId`; resolves to the revision of the put. */
export async function putWithLease(client: Etcd3, key: string, value: string, leaseId: string, timeoutMs: number): Promise<number> {
  // A transaction, not a plain put: the closing delete is one too, and a method already used is warm.
  const res = await withTimeout(
    client.kv.txn({ success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }] }, callOptions(timeoutMs)),
    timeoutMs,
    'put',
  );
  return Number(res.header.revision);
}

/** Deletes `key` if it is still under `leaseId`, in one transaction. */
export async function deleteKeyOfLease(client: Etcd3, key: string, leaseId: string, timeoutMs: number): Promise<void> {
  await withTimeout(client.kv.txn({
    compare: [{ key: Buffer.from(key), target: 'Lease', result: 'Equal', lease: leaseId }],
    success: [{ request_delete_range: { key: Buffer.from(key) } }],
  }, callOptions(timeoutMs)), timeoutMs, 'delete');
}

/** Revokes `leaseId` (deleting its keys). A lease that is already gone counts as revoked. */
export async function revokeLease(client: Etcd3, leaseId: string, timeoutMs: number): Promise<void> {
  try {
    await withTimeout(client.leaseClient.leaseRevoke({ ID: leaseId }, callOptions(timeoutMs)), timeoutMs, 'lease revoke');
  } catch (err) {
    if (!(err instanceof EtcdLeaseInvalidError)) throw err;
  }
}
