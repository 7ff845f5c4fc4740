/** The Kubernetes API server double keeps the API's list/watch contract (its own test, with a plain HTTP client). */
import { expect } from 'chai';
import * as http from 'node:http';
import { KubeApiServerDouble, endpointSlice, parseLabelSelector, sliceEndpoint } from './kube-apiserver-double';

const PATH = '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices';
const SELECTOR = 'labelSelector=kubernetes.io%2Fservice-name%3Decho';

function get(api: KubeApiServerDouble, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http.get(`${api.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }, res => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    }).on('error', reject);
  });
}

/** Opens a watch; `lines` fills as events arrive; `ended` resolves when the server closes it. */
function watch(api: KubeApiServerDouble, query: string): { lines: Array<{ type: string; object: Record<string, unknown> }>; ended: Promise<number>; close(): void } {
  const lines: Array<{ type: string; object: Record<string, unknown> }> = [];
  let request: http.ClientRequest | undefined;
  const ended = new Promise<number>((resolve, reject) => {
    request = http.get(`${api.url}${PATH}?${SELECTOR}&watch=true&${query}`, res => {
      let buffered = '';
      res.on('data', (c: Buffer) => {
        buffered += c.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        for (const p of parts) if (p) lines.push(JSON.parse(p) as { type: string; object: Record<string, unknown> });
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    request.on('error', reject);
  });
  return { lines, ended, close: () => request?.destroy() };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Kubernetes API server double', function () {
  let api: KubeApiServerDouble;
  const slice = (name: string, service = 'echo') => endpointSlice('ns', service, name, { endpoints: [sliceEndpoint('10.0.0.1', 'p')] });

  beforeEach(async () => {
    api = new KubeApiServerDouble({ maxWatchMs: 2_000 });
    await api.start();
  });
  afterEach(() => api.stop());

  it('lists by label selector with the list resourceVersion, in pages', async () => {
    api.applySlice(slice('a'));
    api.applySlice(slice('b'));
    api.applySlice(slice('c', 'other'));
    const all = await get(api, `${PATH}?${SELECTOR}`);
    expect(all.status).to.equal(200);
    expect(all.body.kind).to.equal('EndpointSliceList');
    expect((all.body.items as unknown[]).length).to.equal(2);
    expect((all.body.metadata as { resourceVersion: string }).resourceVersion).to.equal(api.resourceVersion);
    const first = await get(api, `${PATH}?${SELECTOR}&limit=1`);
    const meta = first.body.metadata as { continue: string; resourceVersion: string };
    expect((first.body.items as unknown[]).length).to.equal(1);
    api.applySlice(slice('d'));
    const second = await get(api, `${PATH}?${SELECTOR}&limit=1&continue=${encodeURIComponent(meta.continue)}`);
    expect((second.body.items as Array<{ metadata: { name: string } }>)[0].metadata.name).to.equal('b');
    expect((second.body.metadata as { resourceVersion: string }).resourceVersion).to.equal(meta.resourceVersion, 'pages share one snapshot');
    api.compact();
    expect((await get(api, `${PATH}?${SELECTOR}&limit=1&continue=${encodeURIComponent(meta.continue)}`)).status).to.equal(410);
  });

  it('a watch from a resourceVersion replays what came after it, then streams; bookmarks only when allowed', async () => {
    const rv = api.applySlice(slice('a'));
    api.applySlice(slice('a'));
    api.deleteSlice('ns', 'a');
    const w = watch(api, `resourceVersion=${rv}&allowWatchBookmarks=true`);
    const plain = watch(api, `resourceVersion=${rv}`);
    await until('replay', () => w.lines.length === 2 && plain.lines.length === 2);
    expect(w.lines.map(l => l.type)).to.deep.equal(['MODIFIED', 'DELETED']);
    api.applySlice(slice('b'));
    api.sendBookmarks();
    await until('live events', () => w.lines.length === 4 && plain.lines.length === 3);
    expect(w.lines[3]).to.deep.equal({ type: 'BOOKMARK', object: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: api.resourceVersion } } });
    expect(plain.lines.map(l => l.type)).to.not.include('BOOKMARK');
    w.close();
    plain.close();
  });

  it('a watch without a resourceVersion starts with ADDED for what exists; timeoutSeconds ends the stream', async () => {
    api.applySlice(slice('a'));
    const w = watch(api, 'timeoutSeconds=1');
    expect(await w.ended).to.equal(200);
    expect(w.lines.map(l => l.type)).to.deep.equal(['ADDED']);
  });

  it('410: an ERROR event for a compacted resourceVersion and when watches expire; HTTP 410 when so configured', async () => {
    const rv = api.applySlice(slice('a'));
    api.applySlice(slice('a'));
    const live = watch(api, `resourceVersion=${api.resourceVersion}`);
    await until('open', () => api.openWatches === 1);
    api.compact();
    const old = watch(api, `resourceVersion=${rv}`);
    await old.ended;
    expect(old.lines).to.have.length(1);
    expect(old.lines[0].type).to.equal('ERROR');
    expect(old.lines[0].object).to.include({ kind: 'Status', code: 410, reason: 'Expired' });
    api.expireWatches();
    await live.ended;
    expect(live.lines.map(l => [l.type, l.object.code])).to.deep.equal([['ERROR', 410]]);
    const strict = new KubeApiServerDouble({ expiredAs: 'http' });
    await strict.start();
    try {
      strict.applySlice(slice('a'));
      strict.compact();
      const answer = await get(strict, `${PATH}?${SELECTOR}&watch=true&resourceVersion=1`);
      expect(answer.status).to.equal(410);
      expect(answer.body).to.include({ kind: 'Status', reason: 'Gone', code: 410 });
    } finally {
      await strict.stop();
    }
  });

  it('401 without the bearer token, 403 Status with the real message for a forbidden namespace', async () => {
    api.setTokens(['t']);
    expect((await get(api, `${PATH}?${SELECTOR}`)).status).to.equal(401);
    expect((await get(api, `${PATH}?${SELECTOR}`, 'wrong')).body).to.include({ kind: 'Status', code: 401, reason: 'Unauthorized' });
    api.forbid('ns');
    const forbidden = await get(api, `${PATH}?${SELECTOR}`, 't');
    expect(forbidden.status).to.equal(403);
    expect(forbidden.body.message).to.equal('endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:ns:default" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "ns"');
  });

  it('label selectors: =, ==, !=, existence', () => {
    expect(parseLabelSelector('a=1,b')({ a: '1', b: '' })).to.equal(true);
    expect(parseLabelSelector('a==1')({ a: '2' })).to.equal(false);
    expect(parseLabelSelector('a!=1')({})).to.equal(true);
    expect(parseLabelSelector('!a')({ a: 'x' })).to.equal(false);
  });
});
