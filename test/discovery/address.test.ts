import { expect } from 'chai';
import { formatAddress, parseIpAddress } from '../../src/discovery/address';

describe('etcd: IP-literal addresses', () => {
  const valid: Array<[string, string, number, string]> = [
    ['1.2.3.4:80', '1.2.3.4', 80, '1.2.3.4:80'],
    ['127.0.0.1:65535', '127.0.0.1', 65535, '127.0.0.1:65535'],
    ['[::1]:80', '::1', 80, '[::1]:80'],
    ['[0:0::1]:80', '::1', 80, '[::1]:80'],
    ['[2001:DB8::A]:443', '2001:db8::a', 443, '[2001:db8::a]:443'],
    ['[2001:db8:0:0:0:0:0:1]:1', '2001:db8::1', 1, '[2001:db8::1]:1'],
  ];
  for (const [input, host, port, canonical] of valid) {
    it(`parses ${input} as ${canonical}`, () => {
      const hp = parseIpAddress(input);
      expect(hp).to.deep.equal({ host, port });
      expect(formatAddress(hp as { host: string; port: number })).to.equal(canonical);
    });
  }

  const invalid: Array<[unknown, RegExp]> = [
    [undefined, /address must be a string, got undefined/],
    [80, /address must be a string, got number/],
    ['', /must be 1-64 characters/],
    ['x'.repeat(65), /must be 1-64 characters/],
    ['localhost:80', /must be an IP literal \(hostnames are not supported yet\)/],
    ['example.com:443', /hostnames are not supported/],
    ['1.2.3.4', /needs a port/],
    ['1.2.3.4:', /invalid port ''/],
    ['1.2.3.4:http', /invalid port 'http'/],
    ['1.2.3.4:0', /port out of range/],
    ['1.2.3.4:70000', /port out of range/],
    ['1.2.3.4:-1', /invalid port/],
    ['010.0.0.1:80', /must be an IP literal/],
    ['::1:80', /IPv6 literals need brackets/],
    ['[::1]', /must look like \[ipv6\]:port/],
    ['[::1]80', /must look like \[ipv6\]:port/],
    ['[1.2.3.4]:80', /invalid IPv6 literal/],
    ['[fe80::1%eth0]:80', /IPv6 zone IDs are not supported/],
    [':50051', /^address ':50051' has no host: register the address clients dial, e\.g\. 10\.0\.0\.5:50051/],
    ['0.0.0.0:50051', /^address '0\.0\.0\.0:50051' is the unspecified address, .* no client can dial: register the address clients dial/],
    ['[::]:50051', /^address '\[::\]:50051' is the unspecified address/],
    ['[0:0::0]:50051', /is the unspecified address/],
  ];
  for (const [input, expected] of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      const result = parseIpAddress(input);
      expect(result).to.be.a('string');
      expect(result).to.match(expected);
    });
  }
});
