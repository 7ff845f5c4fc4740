import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import {
  checkServiceName, decodeEndpoint, EndpointDecodeError, encodeEndpointValue, endpointKey, MAX_VALUE_BYTES, servicePrefix,
} from '../../../src/backends/etcd/endpoint-codec';
import { etcdctl, startEtcd } from '../../support/etcd';

describe('etcd: endpoint codec', () => {
  describe('encoding: the bytes Go writes', () => {
    // Go: json.Marshal(internal.Update{Op: Add, Addr: a, Metadata: map[string]any{...}}) —
    // struct fields in order, map keys sorted byte-wise, <, >, & and U+2028/9 escaped.
    const golden: Array<[string, Parameters<typeof encodeEndpointValue>[0], string]> = [
      ['defaults', { address: '1.2.3.4:80' },
        '{"Op":0,"Addr":"1.2.3.4:80","Metadata":{"priority":0,"weight":1}}'],
      ['weight, priority and user keys, sorted', { address: '10.0.0.7:50051', weight: 2.5, priority: 1, metadata: { zone: 'eu-1', version: '1.2', az: 3 } },
        '{"Op":0,"Addr":"10.0.0.7:50051","Metadata":{"az":3,"priority":1,"version":"1.2","weight":2.5,"zone":"eu-1"}}'],
      ['nested maps sorted too, arrays kept in order', { address: '[::1]:80', metadata: { tags: ['b', 'a'], m: { z: null, a: true } } },
        '{"Op":0,"Addr":"[::1]:80","Metadata":{"m":{"a":true,"z":null},"priority":0,"tags":["b","a"],"weight":1}}'],
      ['HTML-safe escaping', { address: '1.2.3.4:80', metadata: { note: 'a<b>&c\u2028"q"\n' } },
        '{"Op":0,"Addr":"1.2.3.4:80","Metadata":{"note":"a\\u003cb\\u003e\\u0026c\\u2028\\"q\\"\\n","priority":0,"weight":1}}'],
      ['weight 0 (draining)', { address: '1.2.3.4:80', weight: 0 },
        '{"Op":0,"Addr":"1.2.3.4:80","Metadata":{"priority":0,"weight":0}}'],
      ['weight/priority inside metadata are ours, not the user\'s', { address: '1.2.3.4:80', weight: 3, metadata: { weight: 9, priority: 9, x: 1 } },
        '{"Op":0,"Addr":"1.2.3.4:80","Metadata":{"priority":0,"weight":3,"x":1}}'],
    ];
    for (const [name, input, bytes] of golden) {
      it(name, () => {
        expect(encodeEndpointValue(input)).to.equal(bytes);
        const decoded = decodeEndpoint('svc/x', bytes);
        expect(decoded.ok).to.equal(true);
      });
    }

    it('round-trips weight, priority and metadata', () => {
      const value = encodeEndpointValue({ address: '[2001:db8::1]:9000', weight: 7, priority: 2, metadata: { zone: 'a', n: [1, 2] } });
      const r = decodeEndpoint('svc/[2001:db8::1]:9000', Buffer.from(value));
      expect(r.ok && r.endpoint).to.deep.equal({
        address: '[2001:db8::1]:9000', hostPort: { host: '2001:db8::1', port: 9000 }, weight: 7, priority: 2, metadata: { zone: 'a', n: [1, 2] },
      });
    });

    it('keys and prefixes', () => {
      expect(endpointKey('foo/bar/svc', '1.2.3.4:80')).to.equal('foo/bar/svc/1.2.3.4:80');
      expect(servicePrefix('svc')).to.equal('svc/');
      expect(checkServiceName('foo/bar/svc')).to.equal(undefined);
      expect(checkServiceName('/svc')).to.match(/must not start or end/);
    });
  });

  describe('decoding: tolerant of what Go and others write', () => {
    const tolerated: Array<[string, string, { address: string; weight: number; priority: number; metadata: Record<string, unknown> }]> = [
      ['Go Manager, no metadata ("Metadata":null)', '{"Op":0,"Addr":"1.2.3.4:80","Metadata":null}',
        { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: {} }],
      ['Metadata absent, no Op', '{"Addr":"1.2.3.4:80"}', { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: {} }],
      ['addr in lower case', '{"addr":"1.2.3.4:80"}', { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: {} }],
      ['ADDR and METADATA in upper case', '{"ADDR":"1.2.3.4:80","METADATA":{"weight":4}}', { address: '1.2.3.4:80', weight: 4, priority: 0, metadata: {} }],
      ['numeric strings (Go frameworks)', '{"Addr":"1.2.3.4:80","Metadata":{"weight":"5","priority":"1"}}',
        { address: '1.2.3.4:80', weight: 5, priority: 1, metadata: {} }],
      ['weight/priority null mean default', '{"Addr":"1.2.3.4:80","Metadata":{"weight":null,"priority":null}}',
        { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: {} }],
      ['unknown fields and Op ignored, as Go does', '{"Op":1,"Addr":"1.2.3.4:80","Extra":{"a":1},"Metadata":{"zone":"a"}}',
        { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: { zone: 'a' } }],
      ['fractional weight and weight 0', '{"Addr":"1.2.3.4:80","Metadata":{"weight":0}}', { address: '1.2.3.4:80', weight: 0, priority: 0, metadata: {} }],
      ['IPv6 canonicalised', '{"Addr":"[0:0:0::1]:80"}', { address: '[::1]:80', weight: 1, priority: 0, metadata: {} }],
      ['Metadata a string (Go allows any value): kept as metadata.value', '{"Addr":"1.2.3.4:80","Metadata":"dc1"}',
        { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: { value: 'dc1' } }],
      ['Metadata an array: kept as metadata.value', '{"Addr":"1.2.3.4:80","Metadata":[1]}',
        { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: { value: [1] } }],
      ['whitespace around JSON', ' \n{"Addr":"1.2.3.4:80"}\n', { address: '1.2.3.4:80', weight: 1, priority: 0, metadata: {} }],
    ];
    for (const [name, value, expected] of tolerated) {
      it(name, () => {
        const r = decodeEndpoint('svc/any-key-name', value);
        expect(r.ok, r.ok ? '' : r.error.message).to.equal(true);
        if (!r.ok) return;
        const { hostPort: _hp, ...rest } = r.endpoint;
        expect(rest).to.deep.equal(expected);
      });
    }
  });

  describe('decoding: malformed values give a typed error, never a throw', () => {
    const malformed: Array<[string, string | Buffer, RegExp]> = [
      ['empty value', '', /empty value/],
      ['not JSON', 'hello', /not JSON/],
      ['raw host:port (go-zero style)', '1.2.3.4:80', /not JSON/],
      ['truncated JSON', '{"Addr":"1.2.3.4:80"', /not JSON/],
      ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0xfd]), /not JSON/],
      ['JSON null', 'null', /not a JSON object/],
      ['JSON array', '[{"Addr":"1.2.3.4:80"}]', /not a JSON object/],
      ['JSON string', '"1.2.3.4:80"', /not a JSON object/],
      ['JSON number', '42', /not a JSON object/],
      ['no Addr', '{"Metadata":{"weight":1}}', /no 'Addr' field/],
      ['Addr empty', '{"Addr":""}', /must be 1-64 characters/],
      ['Addr null', '{"Addr":null}', /address must be a string, got object/],
      ['Addr a number', '{"Addr":8080}', /address must be a string, got number/],
      ['Addr a hostname', '{"Addr":"db.internal:80"}', /must be an IP literal \(hostnames are not supported yet\)/],
      ['Addr without port', '{"Addr":"1.2.3.4"}', /needs a port/],
      ['Addr port out of range', '{"Addr":"1.2.3.4:99999"}', /port out of range/],
      ['Addr IPv6 without brackets', '{"Addr":"::1:80"}', /IPv6 literals need brackets/],
      ['Addr 0.0.0.0 (a bind address)', '{"Addr":"0.0.0.0:80"}', /address '0\.0\.0\.0:80' is the unspecified address/],
      ['Addr [::]', '{"Addr":"[::]:80"}', /is the unspecified address/],
      ['weight negative', '{"Addr":"1.2.3.4:80","Metadata":{"weight":-1}}', /weight must be a finite number in \[0, 1000000\], got -1/],
      ['weight not numeric', '{"Addr":"1.2.3.4:80","Metadata":{"weight":"heavy"}}', /weight must be .* got "heavy"/],
      ['weight a boolean', '{"Addr":"1.2.3.4:80","Metadata":{"weight":true}}', /weight must be .* got true/],
      ['weight NaN (named as such)', '{"Addr":"1.2.3.4:80","Metadata":{"weight":"NaN"}}', /weight must be .* got "NaN"/],
      ['weight too big', '{"Addr":"1.2.3.4:80","Metadata":{"weight":1e9}}', /weight must be/],
      ['weight overflowing to Infinity', '{"Addr":"1.2.3.4:80","Metadata":{"weight":"1e400"}}', /weight must be/],
      ['priority fractional', '{"Addr":"1.2.3.4:80","Metadata":{"priority":1.5}}', /priority must be an integer in \[0, 1000000\], got 1.5/],
      ['priority negative string', '{"Addr":"1.2.3.4:80","Metadata":{"priority":"-1"}}', /priority must be an integer .* got -1/],
      ['priority an object', '{"Addr":"1.2.3.4:80","Metadata":{"priority":{}}}', /priority must be an integer/],
      ['value too large', JSON.stringify({ Addr: '1.2.3.4:80', Metadata: { pad: 'x'.repeat(MAX_VALUE_BYTES) } }), /exceeds 65536/],
    ];
    it(`has at least 20 cases (${malformed.length})`, () => expect(malformed.length).to.be.at.least(20));
    for (const [name, value, reason] of malformed) {
      it(name, () => {
        const r = decodeEndpoint('svc/k', value);
        expect(r.ok).to.equal(false);
        if (r.ok) return;
        expect(r.error).to.be.instanceOf(EndpointDecodeError);
        expect(r.error.name).to.equal('EndpointDecodeError');
        expect(r.error.key).to.equal('svc/k');
        expect(r.error.reason).to.match(reason);
        expect(r.error.message).to.match(/^bad endpoint value at key 'svc\/k': /);
      });
    }
  });

  describe('values written by etcdctl in Go format, read back from a real etcd', function () {
    this.timeout(30_000);

    it('decodes them, with and without Metadata, under any key name', async () => {
      const etcd = await startEtcd();
      const client = new Etcd3({ hosts: etcd.endpoints });
      try {
        const put = (key: string, value: string): string => etcdctl(etcd.endpoints, ['put', key, value]);
        put('foo/bar/svc/1.2.3.4:80', '{"Op":0,"Addr":"1.2.3.4:80","Metadata":null}');
        put('foo/bar/svc/e1', '{"Addr":"1.2.3.5:80"}');
        put('foo/bar/svc/e2', '{"Op":0,"Addr":"[::1]:81","Metadata":{"priority":"1","weight":"3","zone":"b"}}');
        put('foo/bar/svc/bad', 'not json');
        put('foo/bar/svc-other/1.2.3.9:80', '{"Addr":"1.2.3.9:80"}');
        const kvs = await client.getAll().prefix(servicePrefix('foo/bar/svc')).exec();
        const results = kvs.kvs.map(kv => decodeEndpoint(kv.key.toString(), kv.value));
        const ok = results.flatMap(r => (r.ok ? [[r.endpoint.address, r.endpoint.weight, r.endpoint.priority, r.endpoint.metadata]] : []));
        expect(ok).to.deep.equal([
          ['1.2.3.4:80', 1, 0, {}],
          ['1.2.3.5:80', 1, 0, {}],
          ['[::1]:81', 3, 1, { zone: 'b' }],
        ]);
        const errors = results.flatMap(r => (r.ok ? [] : [r.error.key]));
        expect(errors).to.deep.equal(['foo/bar/svc/bad']);
        // Our own bytes, stored by etcdctl, read back identically.
        const ours = encodeEndpointValue({ address: '1.2.3.6:80', weight: 2, metadata: { zone: 'a' } });
        put('foo/bar/svc/1.2.3.6:80', ours);
        expect(etcdctl(etcd.endpoints, ['get', '--print-value-only', 'foo/bar/svc/1.2.3.6:80']).trim()).to.equal(ours);
      } finally {
        client.close();
        await etcd.destroy();
      }
    });
  });
});
