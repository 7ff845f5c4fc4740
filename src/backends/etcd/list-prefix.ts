/** Lists a prefix at one revision, in pages pinned to the first page's revision (a response over grpc-js's receive limit fails). */
import { GRPCOutOfRangeError, GRPCResourceExhastedError, Range, type Etcd3 } from 'etcd3';
import { type DiscoveryKeyValue } from '../../discovery/endpoint-table';

export interface PrefixListing {
  /** The store revision the listing is pinned to: watch from `revision + 1`. */
  readonly revision: number;
  readonly kvs: DiscoveryKeyValue[];
}

/** Restarts allowed when the pinned revision is compacted while paging. */
const MAX_COMPACTION_RESTARTS = 3;

/** Page size, shrunk in place when a page is too large, so later listings start from what fits. */
export interface Pager {
  pageSize: number;
}

/** Pages of at most `pager.pageSize` keys, halved while too large; each page has `pageTimeoutMs`. */
export async function listPrefix(client: Etcd3, prefix: string, pager: Pager, pageTimeoutMs: number): Promise<PrefixListing> {
  for (let restart = 0; ; restart++) {
    try {
      return await listPinned(client, prefix, pager, pageTimeoutMs);
    } catch (err) {
      // The first page's revision was compacted while later pages were read: start over at the newest revision.
      if (!(err instanceof GRPCOutOfRangeError) || restart >= MAX_COMPACTION_RESTARTS) throw err;
    }
  }
}

async function listPinned(client: Etcd3, prefix: string, pager: Pager, pageTimeoutMs: number): Promise<PrefixListing> {
  const end = Range.prefix(prefix).end;
  let start: Buffer = Buffer.from(prefix);
  let revision: number | undefined;
  const kvs: DiscoveryKeyValue[] = [];
  for (;;) {
    const builder = client.getAll().inRange({ start, end }).limit(pager.pageSize).options({ deadline: Date.now() + pageTimeoutMs });
    if (revision !== undefined) builder.revision(revision);
    let res;
    try {
      res = await builder.exec();
    } catch (err) {
      // Too large: shrink for good. etcd3 counts this error against the host's circuit
      // breaker, so the retry may fail fast; the caller's backoff then lists again, smaller.
      if (err instanceof GRPCResourceExhastedError && pager.pageSize > 1) {
        pager.pageSize = Math.max(1, Math.floor(pager.pageSize / 2));
        continue;
      }
      throw err;
    }
    revision ??= Number(res.header.revision);
    for (const kv of res.kvs) {
      kvs.push({ key: kv.key.toString('utf8'), value: kv.value, modRevision: kv.mod_revision });
    }
    if (!res.more || res.kvs.length === 0) return { revision, kvs };
    // The next page starts just after the last key (keys are returned in byte order).
    start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
  }
}
