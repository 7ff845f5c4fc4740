import { expect } from 'chai';
import { EndpointTable, type DiscoveryKeyValue } from '../../src/discovery/endpoint-table';
import { decodeEndpoint, encodeEndpointValue } from '../../src/backends/etcd/endpoint-codec';

function kv(key: string, address: string, modRevision: string, fields: { weight?: number; priority?: number; metadata?: Record<string, unknown> } = {}): DiscoveryKeyValue {
  return { key, value: encodeEndpointValue({ address, ...fields }), modRevision };
}

describe('EndpointTable', function () {
  let warnings: string[];
  let table: EndpointTable;
  beforeEach(function () {
    warnings = [];
    table = new EndpointTable('svc', text => warnings.push(text), undefined, decodeEndpoint);
  });
  const addresses = (): string[] => table.resolve().endpoints.map(e => e.addresses.map(a => ('host' in a ? `${a.host}:${a.port}` : '')).join());

  it('lists endpoints in key order, whatever the order of puts, with their attributes', function () {
    table.replaceAll([kv('svc/b', '10.0.0.2:80', '5', { weight: 3, priority: 1, metadata: { zone: 'z' } })]);
    table.put(kv('svc/a', '10.0.0.1:80', '6'));
    table.put(kv('svc/c', '[::1]:80', '7'));
    expect(addresses()).to.deep.equal(['10.0.0.1:80', '10.0.0.2:80', '::1:80']);
    const attrs = table.resolve().attributes;
    expect(attrs.get('10.0.0.2:80')).to.deep.equal({ weight: 3, priority: 1, metadata: { zone: 'z' } });
    expect(attrs.get('[::1]:80')).to.deep.equal({ weight: 1, priority: 0, metadata: {} });
    expect(Object.isFrozen(attrs.get('10.0.0.1:80'))).to.equal(true);
  });

  it('skips bad values with one warning each and keeps good ones', function () {
    table.replaceAll([
      { key: 'svc/x', value: 'not json', modRevision: '2' },
      kv('svc/y', '10.0.0.1:80', '3'),
      { key: 'svc/z', value: JSON.stringify({ Addr: '10.0.0.2:80', Metadata: { weight: 'heavy' } }), modRevision: '4' },
    ]);
    expect(addresses()).to.deep.equal(['10.0.0.1:80']);
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.include("key 'svc/x'").and.include('not JSON');
    expect(warnings[1]).to.include("key 'svc/z'").and.include('weight');
    // A re-list of the same revisions neither re-decodes nor re-warns, and reports no change.
    expect(table.replaceAll([
      { key: 'svc/x', value: 'not json', modRevision: '2' },
      kv('svc/y', '10.0.0.1:80', '3'),
      { key: 'svc/z', value: 'whatever', modRevision: '4' },
    ])).to.equal(false);
    expect(warnings).to.have.length(2);
    // Fixing a bad key brings it in.
    expect(table.put(kv('svc/z', '10.0.0.2:80', '9'))).to.equal(true);
    expect(addresses()).to.deep.equal(['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('first key wins a duplicate address, with one warning; the loser takes over when the winner goes', function () {
    table.replaceAll([kv('svc/1', '10.0.0.1:80', '2', { weight: 1 }), kv('svc/2', '10.0.0.1:80', '3', { weight: 9 })]);
    expect(addresses()).to.deep.equal(['10.0.0.1:80']);
    expect(table.resolve().attributes.get('10.0.0.1:80')?.weight).to.equal(1);
    table.resolve();
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include("key 'svc/2'").and.include("'svc/1'");
    expect(table.delete('svc/1')).to.equal(true);
    expect(table.resolve().attributes.get('10.0.0.1:80')?.weight).to.equal(9);
    expect(table.delete('svc/1')).to.equal(false);
  });

  it('reports changes only when something changed', function () {
    expect(table.replaceAll([kv('svc/a', '10.0.0.1:80', '2')])).to.equal(true);
    expect(table.put(kv('svc/a', '10.0.0.1:80', '2'))).to.equal(false);
    expect(table.replaceAll([kv('svc/a', '10.0.0.1:80', '2')])).to.equal(false);
    expect(table.replaceAll([kv('svc/a', '10.0.0.1:80', '3')])).to.equal(true);
    expect(table.replaceAll([])).to.equal(true);
    expect(table.resolve().endpoints).to.deep.equal([]);
  });

  it('patches incrementally to exactly what a full rebuild gives, through seeded puts, deletes, bad values and duplicate addresses', function () {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const live = new Map<string, DiscoveryKeyValue>();
    let revision = 1;
    table.replaceAll([]);
    for (let step = 0; step < 3000; step++) {
      const n = Math.floor(random() * 300);
      const key = `svc/k${n.toString(36)}`;
      const roll = random();
      if (roll < 0.55) {
        // 150 addresses for 300 keys: duplicates come and go.
        const a = Math.floor(random() * 150);
        const value = kv(key, `10.0.${a >> 8}.${a & 255}:80`, String(++revision), { weight: 1 + Math.floor(random() * 4) });
        table.put(value);
        live.set(key, value);
      } else if (roll < 0.6) {
        const bad = { key, value: 'not json', modRevision: String(++revision) };
        table.put(bad);
        live.set(key, bad);
      } else {
        table.delete(key);
        live.delete(key);
      }
      // Sometimes several events between two resolutions, as a coalescing window gives.
      if (random() < 0.5) continue;
      const fresh = new EndpointTable('svc', () => undefined, undefined, decodeEndpoint);
      fresh.replaceAll(live.values());
      const expected = fresh.resolve();
      const got = table.resolve();
      expect(got.endpoints.map(e => JSON.stringify(e.addresses)), `step ${step}`).to.deep.equal(expected.endpoints.map(e => JSON.stringify(e.addresses)));
      expect([...got.attributes].sort(), `step ${step}`).to.deep.equal([...expected.attributes].sort());
    }
    const before = table.resolve();
    const [first] = before.endpoints;
    const firstAttributes = before.attributes.get(addresses()[0]);
    table.put(kv('svc/zzz', '10.9.9.9:80', String(++revision)));
    const after = table.resolve();
    expect(after.endpoints[0]).to.equal(first);
    expect(after.attributes.get(addresses()[0])).to.equal(firstAttributes);
  });
});
