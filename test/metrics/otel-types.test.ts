/**
 * Our structural copy of the OpenTelemetry API (src/metrics/otel-types.ts) must accept
 * what the real API returns: checked by the compiler (this file type-checks in `npm test`),
 * and at run time against the real no-op meter.
 */
import { expect } from 'chai';
import * as realApi from '@opentelemetry/api';
import { type Meter, type OtelApiModule } from '../../src/metrics/otel-types';

// Compile-time: the real module and meter are assignable to ours.
const asOurs: OtelApiModule = realApi;
const meter: Meter = realApi.metrics.getMeterProvider().getMeter('check');

describe('metrics: our OpenTelemetry types fit the real API', () => {
  it('the real module and meter work through our types', () => {
    const counter = meter.createCounter('grpc_etcd_lb.test.counter', { unit: '{x}', description: 'd' });
    counter.add(1, { a: 'b' });
    meter.createHistogram('grpc_etcd_lb.test.histogram', { advice: { explicitBucketBoundaries: [1, 2] } }).record(1);
    meter.createObservableGauge('grpc_etcd_lb.test.gauge').addCallback(result => result.observe(1, { a: 1 }));
    expect(asOurs.createNoopMeter()).to.be.an('object');
  });
});
