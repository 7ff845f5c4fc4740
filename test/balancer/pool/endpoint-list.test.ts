import { expect } from 'chai';
import { type Endpoint } from '../../../src/common/grpc-experimental';
import { type EndpointAttributes } from '../../../src/discovery/endpoint-attributes';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { EndpointAttributeReader } from '../../../src/balancer/pool/endpoint-attribute-reader';
import { EndpointList } from '../../../src/balancer/pool/endpoint-list';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';

/** A resolution as a generic resolver builds it: every object new. */
function generic(ports: readonly number[], weights: Record<number, number> = {}, zone?: string): { list: Endpoint[]; attributes: Map<string, EndpointAttributes> } {
  const list = ports.map(port => ({ addresses: [{ host: '10.0.0.1', port }] }));
  const attributes = new Map(ports.map(port => [`10.0.0.1:${port}`, { weight: weights[port] ?? 1, priority: 0, metadata: zone === undefined ? {} : { zone } }]));
  return { list, attributes };
}

describe('EndpointList: a resolution compared by value', () => {
  function setup() {
    const reader = new EndpointAttributeReader('test');
    const moved: string[] = [];
    const list = new EndpointList({
      create: (key, addresses) => new EndpointState(key, addresses, new CallLoad(resolveCallLoadOptions({}))),
      applyAttributes: (state, attributes) => { if (reader.apply(state, attributes)) moved.push(state.key); },
      forget: () => undefined,
    });
    return { list, moved };
  }

  it('keeps every state when all objects are new, and moves only the endpoint whose weight changed', () => {
    const { list, moved } = setup();
    const first = generic([1, 2, 3, 4]);
    list.reconcile(first.list, first.attributes, false);
    const ids = [...list.values()].map(s => s.id);
    moved.length = 0;
    const second = generic([1, 2, 3, 4], { 3: 5 });
    const { created, dropped } = list.reconcile(second.list, second.attributes, false);
    expect(created).to.have.length(0);
    expect(dropped).to.have.length(0);
    expect([...list.values()].map(s => s.id)).to.deep.equal(ids);
    expect(moved).to.deep.equal(['10.0.0.1:3']);
    expect(list.locate('10.0.0.1:3')!.weight).to.equal(5);
  });

  it('follows an insertion, a removal and a zone change in the same update', () => {
    const { list, moved } = setup();
    const first = generic([1, 2, 3, 4]);
    list.reconcile(first.list, first.attributes, false);
    const kept = list.locate('10.0.0.1:4')!.id;
    moved.length = 0;
    const second = generic([1, 5, 3, 4]);
    second.attributes.set('10.0.0.1:4', { weight: 1, priority: 0, metadata: { zone: 'b' } });
    const { created, dropped } = list.reconcile(second.list, second.attributes, false);
    expect(created.map(s => s.key)).to.deep.equal(['10.0.0.1:5']);
    expect(dropped.map(s => s.key)).to.deep.equal(['10.0.0.1:2']);
    expect(list.locate('10.0.0.1:4')!.id).to.equal(kept);
    expect(list.locate('10.0.0.1:4')!.zone).to.equal('b');
    expect(moved).to.deep.equal(['10.0.0.1:4']);
  });

  it('replaces every state with replaceAll, even when nothing changed', () => {
    const { list } = setup();
    const first = generic([1, 2]);
    list.reconcile(first.list, first.attributes, false);
    const second = generic([1, 2]);
    const { created, dropped } = list.reconcile(second.list, second.attributes, true);
    expect(created).to.have.length(2);
    expect(dropped).to.have.length(2);
  });
});
