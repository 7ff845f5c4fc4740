/**
 * A seeded generator of values under a service prefix for the fuzz case:
 * malformed ones of many kinds (random bytes, wrong JSON types, NaN/negative/
 * huge weights, bad and hostname addresses, oversized values) mixed with valid
 * ones in every accepted spelling (IPv6 forms, case variants, numeric strings,
 * duplicates of one address under several keys). Each entry says, by
 * construction, what the resolver must make of it.
 */
import { encodeEndpointValue } from '../../src/backends/etcd/endpoint-codec';

export interface FuzzEntry {
  /** The etcd key: under `<service>/`, mostly ASCII, some with raw bytes. */
  readonly key: Buffer;
  readonly value: Buffer;
  /** Kind of entry, for counts in the log. */
  readonly category: string;
  /** Set when the value is a valid endpoint: its canonical address and attributes. */
  readonly valid?: { readonly address: string; readonly weight: number; readonly priority: number };
}

export interface FuzzCorpusOptions {
  seed: number;
  service: string;
  /** Entries in all. */
  count: number;
  /** Fraction of entries that are valid endpoints (some of them duplicates). */
  validFraction: number;
  /** Values of about 1 MB (etcd accepts up to 1.5 MiB per request by default). */
  hugeValues: number;
}

/** The valid entry each address resolves to: the first key in byte order among those naming it. */
export function expectedEndpoints(entries: readonly FuzzEntry[]): Map<string, { weight: number; priority: number }> {
  const winners = new Map<string, { key: Buffer; weight: number; priority: number }>();
  for (const e of entries) {
    if (!e.valid) continue;
    const current = winners.get(e.valid.address);
    if (!current || Buffer.compare(e.key, current.key) < 0) winners.set(e.valid.address, { key: e.key, weight: e.valid.weight, priority: e.valid.priority });
  }
  return new Map([...winners].map(([address, w]) => [address, { weight: w.weight, priority: w.priority }]));
}

const HOSTNAMES = ['localhost', 'example.com', 'svc.default.svc.cluster.local', 'etcd-0', 'xn--nxasmq6b.com'];
const BAD_ADDRESSES = [
  '127.0.0.1', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:99999', '127.0.0.1:-1', '127.0.0.1:80:90',
  '256.1.1.1:80', '01.2.3.4:80', '1.2.3:80', '[::1]', '::1:80', '[::1]:', '[fe80::1%eth0]:80', '[::g]:80', '[::1:80',
  ' 127.0.0.1:80', '127.0.0.1:80 ', '127.0.0.\uff11:80', 'http://127.0.0.1:80', 'unix:/tmp/sock', '', ':80',
  `127.0.0.1:${'9'.repeat(70)}`, '127.0.0.1:8O', '127.0.0.1:0x50', '1.2.3.4/24:80', '[2001:db8::1]:80/x',
];
const BAD_WEIGHTS: unknown[] = [-1, -1e-9, 1_000_000.5, 1e7, 'NaN', 'Infinity', '-Infinity', '1e999', 'abc', '', true, false, [], [1], {}, { value: 1 }, '1,5', '0x10'];
const BAD_PRIORITIES: unknown[] = [-1, 0.5, 1_000_001, 'x', true, [], {}, 'NaN', '1e999', '1.5'];
/** Raw JSON text for numbers JSON.stringify cannot write. */
const RAW_BAD_NUMBERS = ['1e400', '-1e400', '-0.0000001'];

/** Generates the corpus. Deterministic for a given seed. */
export function generateMalformedCorpus(options: FuzzCorpusOptions, random: () => number): FuzzEntry[] {
  const { service, count } = options;
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)];
  const entries: FuzzEntry[] = [];
  const usedKeys = new Set<string>();
  const validAddresses: string[] = [];
  let serial = 0;

  const keyFor = (suffix: string): Buffer => {
    let key = `${service}/${suffix}`;
    while (usedKeys.has(key)) key = `${service}/${suffix}~${serial++}`;
    usedKeys.add(key);
    return Buffer.from(key);
  };
  const add = (category: string, key: Buffer, value: Buffer | string, valid?: FuzzEntry['valid']): void => {
    entries.push({ category, key, value: typeof value === 'string' ? Buffer.from(value) : value, valid });
  };
  const loopbackV4 = (): string => `127.${int(256)}.${int(256)}.${1 + int(254)}:${1 + int(65535)}`;
  const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const base = (address: string, metadata: Record<string, unknown>): string => JSON.stringify({ Op: 0, Addr: address, Metadata: metadata });

  /** A valid endpoint, at a new address, in one of the accepted spellings. */
  const addValid = (): void => {
    const style = int(10);
    let address: string;
    let written: string;
    if (style === 0) {
      // IPv6 loopback in a non-canonical spelling: resolves to the compressed form.
      const port = 1 + int(65535);
      address = `[::1]:${port}`;
      written = pick([`[0:0:0:0:0:0:0:1]:${port}`, `[::0:1]:${port}`, `[0000::1]:${port}`, address]);
    } else if (style === 1) {
      const port = 1 + int(65535);
      address = `[::ffff:7f00:1]:${port}`;
      written = pick([`[::ffff:127.0.0.1]:${port}`, `[::FFFF:7F00:1]:${port}`, address]);
    } else {
      address = written = loopbackV4();
    }
    if (validAddresses.includes(address)) return;
    validAddresses.push(address);
    const weight = pick([1, 1, 2, 0, 0.5, 1_000_000, 3]);
    const priority = pick([0, 0, 0, 1, 2, 1_000_000]);
    const spelling = int(6);
    let value: string;
    if (spelling === 0) value = encodeEndpointValue({ address: written, weight, priority, metadata: { zone: pick(['a', 'b', 'ü', '\u2028']) } });
    else if (spelling === 1) value = JSON.stringify({ addr: written, metadata: { weight, priority } });
    else if (spelling === 2) value = JSON.stringify({ ADDR: written, Metadata: { weight: String(weight), priority: String(priority) } });
    else if (spelling === 3 && weight === 1 && priority === 0) value = JSON.stringify({ Addr: written, Metadata: null });
    else if (spelling === 4) value = JSON.stringify({ Op: 0, Addr: written, Metadata: { weight, priority, extra: { nested: [1, { deep: true }] } }, Unknown: 'field' });
    else value = base(written, { weight, priority });
    add('valid', keyFor(int(3) === 0 ? written : `v${serial++}`), value, { address, weight, priority });
  };

  const addDuplicate = (): void => {
    if (validAddresses.length === 0) return;
    const address = pick(validAddresses);
    const weight = pick([1, 2, 5]);
    add('duplicate', keyFor(`dup-${serial++}`), base(address, { weight, priority: 0 }), { address, weight, priority: 0 });
  };

  const addInvalid = (): void => {
    const kind = int(9);
    // Some keys carry raw bytes (a 0xff makes their UTF-8 text lossy, never equal to an ASCII key).
    const key = int(20) === 0
      ? Buffer.concat([Buffer.from(`${service}/`), randomBytes(int(12)), Buffer.from([0xff]), randomBytes(int(4))])
      : keyFor(`bad-${serial++}`);
    switch (kind) {
      case 0: add('random-bytes', key, randomBytes(int(300))); break;
      case 1: add('not-an-object', key, pick(['null', '[]', '42', 'true', '"127.0.0.1:80"', '[{"Addr":"127.0.0.1:80"}]', '', ' ', '{', '{"Addr":"127.0.0.1:80"', '{"Addr":"127.0.0.1:80"}}'])); break;
      case 2: add('addr-type', key, JSON.stringify({ Addr: pick([80, ['127.0.0.1:80'], { host: '127.0.0.1' }, null, true, 127.001]), Metadata: {} })); break;
      case 3: add('addr-missing', key, JSON.stringify(pick([{}, { Address: '127.0.0.1:80' }, { Metadata: { weight: 1 } }, { Op: 0 }]))); break;
      case 4: add('bad-address', key, base(pick(BAD_ADDRESSES), {})); break;
      case 5: add('hostname', key, base(`${pick(HOSTNAMES)}:${1 + int(65535)}`, { weight: 1 })); break;
      case 6: add('bad-weight', key, base(loopbackV4(), { weight: pick(BAD_WEIGHTS) })); break;
      case 7: add('bad-priority', key, base(loopbackV4(), { priority: pick(BAD_PRIORITIES) })); break;
      default: add('raw-number', key, `{"Addr":"${loopbackV4()}","Metadata":{"${pick(['weight', 'priority'])}":${pick(RAW_BAD_NUMBERS)}}}`);
    }
  };

  // Size limits: just under 64 KiB is still a valid endpoint, just over is not.
  const bigAddress = loopbackV4();
  validAddresses.push(bigAddress);
  add('valid-60KiB', keyFor('big-valid'), base(bigAddress, { weight: 1, priority: 0, pad: 'x'.repeat(60 * 1024) }), { address: bigAddress, weight: 1, priority: 0 });
  add('over-64KiB', keyFor('big-invalid'), base(loopbackV4(), { pad: 'x'.repeat(70 * 1024) }));
  // Nesting JSON.parse accepts and JSON.stringify cannot write back (stack overflow).
  const deepAddress = loopbackV4();
  validAddresses.push(deepAddress);
  add('valid-deep', keyFor('deep-valid'), `{"Addr":"${deepAddress}","Metadata":{"deep":${'['.repeat(25_000)}${']'.repeat(25_000)}}}`, { address: deepAddress, weight: 1, priority: 0 });
  for (let i = 0; i < options.hugeValues; i++) {
    const size = 1_000_000 + int(1000);
    const huge = i % 3 === 0
      ? randomBytes(size)
      : Buffer.from(i % 3 === 1 ? base(loopbackV4(), { pad: 'y'.repeat(size) }) : `"${'z'.repeat(size)}"`);
    add('1MB', keyFor(`huge-${i}`), huge);
  }
  while (entries.length < count) {
    const r = random();
    if (r < options.validFraction * 0.8) addValid();
    else if (r < options.validFraction) addDuplicate();
    else addInvalid();
  }
  // Interleave: huge and boundary values are not all at the front.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  return entries;
}

/** Entries per category, for the log. */
export function categoryCounts(entries: readonly FuzzEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) counts[e.category] = (counts[e.category] ?? 0) + 1;
  return counts;
}
