import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { createLoadReporter, decodeOrcaLoadReport, encodeOrcaLoadReport, loadReportServerOptions, ORCA_LOAD_REPORT_HEADER } from '../../src';
import { loadEcho, type EchoClient } from '../support/echo-proto';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { waitFor } from '../support/wait';

const GRPC_JS_ROOT = dirname(require.resolve('@grpc/grpc-js/package.json'));

/** What grpc-js's loadOrcaProto() does on every call (1.14: its cache is a `const null`). */
function loadOrcaProtoLikeGrpcJs(): protoLoader.PackageDefinition {
  return protoLoader.loadSync('xds/service/orca/v3/orca.proto', {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [join(GRPC_JS_ROOT, 'proto/xds'), join(GRPC_JS_ROOT, 'proto/protoc-gen-validate')],
  });
}

type MessageType = { serialize(v: object): Buffer; deserialize(b: Buffer): Record<string, unknown> };
function orcaMessageType(): MessageType {
  const pkg = grpc.loadPackageDefinition(loadOrcaProtoLikeGrpcJs()) as unknown as { xds: { data: { orca: { v3: { OrcaLoadReport: MessageType } } } } };
  return pkg.xds.data.orca.v3.OrcaLoadReport;
}

/** One call's trailers, whatever its status. */
function callWithTrailers(client: EchoClient): Promise<grpc.Metadata> {
  return new Promise(resolve => {
    const call = client.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, () => {});
    call.on('status', (s: grpc.StatusObject) => resolve(s.metadata));
  });
}

describe('ORCA load reports (server helper)', function () {
  this.timeout(30_000);
  let server: EchoServer | undefined;
  let client: EchoClient | undefined;
  afterEach(async () => {
    client?.close();
    client = undefined;
    await server?.stop();
    server = undefined;
  });

  it('encodes OrcaLoadReport exactly as grpc-js\'s protobuf does, and decodes grpc-js\'s encoding', () => {
    const type = orcaMessageType();
    const report = { cpuUtilization: 0.25, rpsFractional: 812.5, eps: 3, applicationUtilization: 0.4, requestCost: { db: 2.5 }, utilization: { pool: 0.5, q: 1 }, namedMetrics: { x: -1 } };
    const ours = encodeOrcaLoadReport(report);
    expect(type.deserialize(ours)).to.deep.include({
      cpu_utilization: 0.25, rps_fractional: 812.5, eps: 3, application_utilization: 0.4, request_cost: { db: 2.5 }, utilization: { pool: 0.5, q: 1 }, named_metrics: { x: -1 },
    });
    const theirs = type.serialize({ mem_utilization: 0.5, rps_fractional: 10, application_utilization: 0.75, rps: '7', named_metrics: { a: 1, b: 2 } });
    expect(decodeOrcaLoadReport(theirs)).to.deep.equal({ memUtilization: 0.5, rpsFractional: 10, applicationUtilization: 0.75, namedMetrics: { a: 1, b: 2 } });
    expect(() => decodeOrcaLoadReport(Buffer.from([0x31, 1, 2]))).to.throw(/truncated/);
  });

  it('grpc-js re-parses orca.proto per call; our encoder does not (figures, no assertion on speed)', () => {
    const report = { rpsFractional: 812.5, eps: 0, applicationUtilization: 0.4 };
    const parses = 20;
    let t = performance.now();
    for (let k = 0; k < parses; k++) loadOrcaProtoLikeGrpcJs();
    const parseMs = (performance.now() - t) / parses;
    const encodes = 100_000;
    t = performance.now();
    for (let k = 0; k < encodes; k++) encodeOrcaLoadReport(report);
    const encodeUs = ((performance.now() - t) * 1000) / encodes;
    console.log(`      grpc-js loadOrcaProto() (per call when it serializes/deserializes a report): ${parseMs.toFixed(2)} ms; our encode: ${encodeUs.toFixed(2)} µs`);
    expect(parseMs).to.be.greaterThan(0);
  });

  it('a server with loadReportServerOptions() reports rps_fractional, eps and application_utilization in every call\'s trailers', async () => {
    let utilization: number | undefined = 0.5;
    server = await startEchoServer({ serverOptions: loadReportServerOptions({ utilization: () => utilization, refreshMs: 1 }), failRate: 0 });
    client = new (loadEcho().Client)(server.address, grpc.credentials.createInsecure());
    const type = orcaMessageType();
    let last: Record<string, unknown> = {};
    for (let k = 0; k < 50; k++) {
      const trailers = await callWithTrailers(client);
      const values = trailers.get(ORCA_LOAD_REPORT_HEADER);
      expect(values).to.have.length(1);
      last = type.deserialize(values[0] as Buffer);
    }
    expect(last.rps_fractional as number).to.be.greaterThan(0);
    expect(last.application_utilization).to.equal(0.5);
    expect(last.eps).to.equal(0);
    // undefined: the event loop's utilization, sampled once per window (1 s), so it shows
    // within about a window of calls (positive: the loop did run them; at most 1).
    utilization = undefined;
    let own: number | undefined;
    await waitFor('the event loop\'s utilization in the report', async () => {
      own = decodeOrcaLoadReport((await callWithTrailers(client!)).get(ORCA_LOAD_REPORT_HEADER)[0] as Buffer).applicationUtilization;
      return own !== undefined && own !== 0.5;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    expect(own).to.be.greaterThan(0).and.lessThan(1.01);
    // Failures count in eps, and still carry the report.
    server.setBehaviour({ failRate: 1 });
    // (A report is re-encoded at most every refreshMs, 1 ms here: the first failure may carry the one before it.)
    let eps: number | undefined;
    await waitFor('eps in the report of a failed call', async () => {
      eps = decodeOrcaLoadReport((await callWithTrailers(client!)).get(ORCA_LOAD_REPORT_HEADER)[0] as Buffer).eps;
      return eps !== undefined;
    }, { timeoutMs: 10_000, intervalMs: 5 });
    expect(eps).to.be.greaterThan(0);
  });

  it('rejects bad options and grpc.server_call_metric_recording (it would replace the report) with clear errors', () => {
    expect(() => loadReportServerOptions({ windowMs: 0 })).to.throw(/^loadReportServerOptions: windowMs must be a positive number, got 0$/);
    expect(() => loadReportServerOptions({ utilization: 3 as unknown as () => number })).to.throw(/utilization must be a function, got number/);
    expect(() => loadReportServerOptions({}, { 'grpc.server_call_metric_recording': 1 })).to.throw(/grpc.server_call_metric_recording/);
    const existing: grpc.ServerInterceptor = (_m, call) => new grpc.ServerInterceptingCall(call);
    const options = loadReportServerOptions({}, { interceptors: [existing], 'grpc.max_receive_message_length': 10 });
    expect(options.interceptors).to.have.length(2);
    expect(options.interceptors![0]).to.equal(existing);
    expect(options['grpc.max_receive_message_length']).to.equal(10);
  });

  it('serves the same figures out of band to grpc-js weighted_round_robin (enable_oob_load_report), which weighs by them', async () => {
    // Two servers: "busy" reports utilization 0.9, "idle" 0.1 at the same rps → weights 1 : 9.
    const busy = createLoadReporter({ utilization: () => 0.9 });
    const idle = createLoadReporter({ utilization: () => 0.1 });
    const a = await startEchoServer({ name: 'busy', serverOptions: busy.serverOptions(), configure: s => busy.serveOutOfBand(s) });
    const b = await startEchoServer({ name: 'idle', serverOptions: idle.serverOptions(), configure: s => idle.serveOutOfBand(s) });
    try {
      const config = { weighted_round_robin: { enable_oob_load_report: true, oob_load_reporting_period: '0.1s', blackout_period: '0s', weight_update_period: '0.1s' } };
      client = new (loadEcho().Client)(`ipv4:${a.address},${b.address}`, grpc.credentials.createInsecure(), {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [config] }),
      });
      const counts = new Map<string, number>();
      const send = async (n: number): Promise<void> => {
        for (let k = 0; k < n; k++) {
          const reply = await new Promise<{ server: string }>((resolve, reject) => client!.unary({ message: 'm' }, (err, r) => (err ? reject(err) : resolve(r!))));
          counts.set(reply.server, (counts.get(reply.server) ?? 0) + 1);
        }
      };
      await send(50);
      await waitFor('weights from out-of-band reports', async () => {
        counts.clear();
        await send(200);
        return (counts.get('idle') ?? 0) > 3 * (counts.get('busy') ?? 0);
      }, { timeoutMs: 15_000, intervalMs: 100 });
      console.log(`      weighted_round_robin over OOB reports (utilization 0.9 vs 0.1): busy ${counts.get('busy') ?? 0}, idle ${counts.get('idle') ?? 0} of 200`);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('LoadReporter windows (injected clock)', () => {
  it('reports calls and errors per second over a sliding window, a call at a window\'s edge included', () => {
    let clock = 0;
    const reporter = createLoadReporter({ nowMs: () => clock, utilization: () => 0.5, refreshMs: 1 });
    const finish = (code: grpc.status): Record<string, number> => {
      let report: Record<string, number> = {};
      // Drive the responder as grpc-js does: sendStatus with a status, next() receives it with the trailer.
      const call = new grpc.ServerInterceptingCall({
        start: () => {}, sendMetadata: () => {}, sendMessage: () => {}, startRead: () => {}, getPeer: () => '', getDeadline: () => Infinity, getHost: () => '',
        getAuthContext: () => ({}), getConnectionInfo: () => ({}), getMetricsRecorder: () => undefined as never,
        sendStatus: (status: grpc.StatusObject) => { report = decodeOrcaLoadReport(status.metadata.get(ORCA_LOAD_REPORT_HEADER)[0] as Buffer) as Record<string, number>; },
      } as unknown as grpc.ServerInterceptingCallInterface, undefined);
      reporter.interceptor({} as never, call).sendStatus({ code, details: '', metadata: new grpc.Metadata() });
      return report;
    };
    for (let k = 0; k < 100; k++) {
      clock = k * 10; // 100 calls/s for 1 s
      finish(grpc.status.OK);
    }
    clock = 1900; // a failure late in the next window: it counts fully, the previous window a tenth
    const late = finish(grpc.status.UNAVAILABLE);
    expect(late.eps).to.be.closeTo(1, 1e-9);
    expect(late.rpsFractional).to.be.closeTo(1 + 10, 1e-9);
    expect(late.applicationUtilization).to.equal(0.5);
    clock = 2500; // half-way through the window after: half of the previous one (the failure) counts
    const half = finish(grpc.status.OK);
    expect(half.rpsFractional).to.be.closeTo(1 + 0.5, 1e-9);
    expect(half.eps).to.be.closeTo(0.5, 1e-9);
    clock = 5000; // long idle: nothing from before
    expect(finish(grpc.status.OK).rpsFractional).to.be.closeTo(1, 1e-9);
  });
});
