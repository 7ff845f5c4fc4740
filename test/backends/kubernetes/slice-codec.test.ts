/** EndpointSlice → endpoints of one port: conditions, ports by name and number, address types, metadata. */
import { expect } from 'chai';
import { decodeSliceEndpoint, isReadyValue, sliceEndpoints, type EndpointSlice } from '../../../src/backends/kubernetes/slice-codec';

const slice = (over: Partial<EndpointSlice>): EndpointSlice => ({
  metadata: { name: 's', resourceVersion: '1' },
  addressType: 'IPv4',
  ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: '', port: 8080 }],
  endpoints: [],
  ...over,
});

function decoded(s: EndpointSlice, port: number | string): Array<{ address: string; weight: number; metadata: Record<string, unknown> }> {
  const result = sliceEndpoints(s, port);
  if (result.kind !== 'endpoints') return [];
  return [...result.byAddress].map(([key, value]) => {
    const d = decodeSliceEndpoint(key, value);
    if (!d.ok) throw d.error;
    return { address: d.endpoint.address, weight: d.endpoint.weight, metadata: d.endpoint.metadata };
  });
}

describe('EndpointSlice codec', () => {
  it('ready (or unset) → weight 1; serving + terminating → weight 0; not serving → left out', () => {
    const s = slice({
      endpoints: [
        { addresses: ['10.0.0.1'], conditions: { ready: true } },
        { addresses: ['10.0.0.2'], conditions: {} },
        { addresses: ['10.0.0.3'], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ['10.0.0.4'], conditions: { ready: false, serving: false, terminating: true } },
        { addresses: ['10.0.0.5'], conditions: { ready: false, serving: null, terminating: null } },
      ],
    });
    expect(decoded(s, 'grpc').map(e => [e.address, e.weight])).to.deep.equal([['10.0.0.1:50051', 1], ['10.0.0.2:50051', 1], ['10.0.0.3:50051', 0]]);
    const result = sliceEndpoints(s, 'grpc');
    expect(result.kind === 'endpoints' && [...result.byAddress.values()].map(isReadyValue)).to.deep.equal([true, true, false]);
  });

  it('ports: a name among TCP ports (the unnamed one is ""), a number as it is; UDP is not ours', () => {
    const s = slice({ endpoints: [{ addresses: ['10.0.0.1'] }] });
    expect(decoded(s, '')[0].address).to.equal('10.0.0.1:8080');
    expect(decoded(s, 9000)[0].address).to.equal('10.0.0.1:9000');
    expect(sliceEndpoints(s, 'dns').kind).to.equal('no-port');
    expect(sliceEndpoints(slice({ ports: null }), 'grpc').kind).to.equal('no-port');
  });

  it('IPv6 in brackets, canonical; FQDN refused; metadata from zone, node, pod', () => {
    const v6 = slice({ addressType: 'IPv6', endpoints: [{ addresses: ['FD00:0:0::5'], zone: 'z1', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'echo-7' } }] });
    expect(decoded(v6, 'grpc')).to.deep.equal([{ address: '[fd00::5]:50051', weight: 1, metadata: { zone: 'z1', nodeName: 'n1', targetRef: 'Pod/echo-7' } }]);
    expect(sliceEndpoints(slice({ addressType: 'FQDN', endpoints: [{ addresses: ['a.example'] }] }), 'grpc').kind).to.equal('fqdn');
  });

  it('malformed slices (ports, endpoints or addresses of the wrong type) give nothing, never a throw', () => {
    const bad = (over: Record<string, unknown>): EndpointSlice => slice(over as Partial<EndpointSlice>);
    expect(sliceEndpoints(bad({ ports: { name: 'grpc' } }), 'grpc').kind).to.equal('no-port');
    expect(decoded(bad({ endpoints: 'x' }), 'grpc')).to.deep.equal([]);
    expect(decoded(bad({ endpoints: [null, 3, { addresses: '10.0.0.1' }] }), 'grpc')).to.deep.equal([]);
  });

  it('a malformed address reaches the table as a decode error (warned there), never a throw', () => {
    const result = sliceEndpoints(slice({ endpoints: [{ addresses: ['not-an-ip'] }] }), 'grpc');
    expect(result.kind).to.equal('endpoints');
    if (result.kind !== 'endpoints') throw new Error(result.kind);
    const [[key, value]] = [...result.byAddress];
    const d = decodeSliceEndpoint(key, value);
    expect(d.ok).to.equal(false);
    expect(!d.ok && d.error.message).to.match(/must be an IP literal/);
  });
});
