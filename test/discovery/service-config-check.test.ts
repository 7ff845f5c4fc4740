import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { registerBalancers } from '../../src/balancer/policies/register-balancers';
import { closestPolicyName } from '../../src/discovery/service-config-check';
import { captureGrpcLog } from '../support/grpc-log';

/** A channel on `target` with `serviceConfig`, made and closed: our resolver is built with the channel. */
function openChannel(target: string, serviceConfig: unknown): void {
  const options = serviceConfig === undefined ? {} : { 'grpc.service_config': JSON.stringify(serviceConfig) };
  const channel = new grpc.Channel(target, grpc.credentials.createInsecure(), options);
  channel.getConnectivityState(true);
  channel.close();
}

describe('service config check: misspelt policy names are not silent', () => {
  let log: ReturnType<typeof captureGrpcLog> | undefined;
  before(() => register());
  afterEach(() => {
    log?.restore();
    grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
  });

  it('names an unknown etcd_* policy once per target at ERROR, with the closest known name', () => {
    log = captureGrpcLog();
    for (let i = 0; i < 3; i++) openChannel('etcd:///check/misspelt', { loadBalancingConfig: [{ etcd_least_requests: {} }] });
    const lines = log.lines.filter(l => l.includes('etcd_least_requests'));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include("unknown LB policy 'etcd_least_requests'").and.include("did you mean 'etcd_least_request'?")
      .and.include('this channel uses pick_first').and.include('etcd:///check/misspelt');
  });

  it('says which policy grpc-js falls back to, and catches loadBalancingPolicy (which grpc-js ignores)', () => {
    log = captureGrpcLog();
    openChannel('etcd:///check/fallback', { loadBalancingConfig: [{ etcd_wieghted_random: {} }, { round_robin: {} }] });
    openChannel('etcd:///check/legacy', { loadBalancingPolicy: 'etcd_peak_ewma' });
    expect(log.lines.find(l => l.includes('etcd_wieghted_random'))).to.include("did you mean 'etcd_weighted_random'?").and.include('uses round_robin');
    expect(log.lines.find(l => l.includes('loadBalancingPolicy'))).to.include('"loadBalancingConfig": [{ "etcd_peak_ewma": {} }]');
  });

  it('is quiet for a known policy; at INFO it notes a channel that uses none of ours', () => {
    grpc.setLogVerbosity(grpc.logVerbosity.INFO);
    log = captureGrpcLog();
    openChannel('etcd:///check/known', { loadBalancingConfig: [{ etcd_peak_ewma: {} }] });
    openChannel('etcd:///check/none', undefined);
    expect(log.lines.filter(l => l.includes('check/known'))).to.deep.equal([]);
    expect(log.lines.find(l => l.includes('check/none'))).to.include('no etcd_* policy in grpc.service_config; this channel uses pick_first');
  });

  it('knows exactly the policies register() registers', () => {
    for (const name of registerBalancers()) expect(grpc.experimental.isLoadBalancerNameRegistered(name), name).to.equal(true);
  });

  it('suggests only names close to ours', () => {
    expect(closestPolicyName('etcd_weighted_round_robbin')).to.equal('etcd_weighted_round_robin');
    expect(closestPolicyName('ETCD_PEAK_EWMA')).to.equal('etcd_peak_ewma');
    expect(closestPolicyName('round_robinn')).to.equal(undefined);
  });
});
