/**
 * What a user sees when etcd is down as the client starts: every failed call says
 * which etcd, since when, and that it is retrying, in words of its own, never
 * etcd3's internals (an empty "Resolution note", "circuit breaker is open").
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { installBackends } from '../../../src/discovery/backend-registry';
import { etcdBackend } from '../../../src/backends/etcd/etcd-backend';
import { unary } from '../../support/echo-proto';
import { freePort } from '../../support/ports';
import { startEchoServer } from '../../support/echo-server';
import { echoClient, etcdTarget } from './resolver-fixtures';

describe('resolver: etcd unreachable from the start, as calls report it', function () {
  before(() => {
    installBackends([etcdBackend]);
    registerBalancers();
  });

  for (const policy of ['etcd_least_request', 'round_robin']) {
    it(`every call fails with UNAVAILABLE naming etcd, since when, and the cause (${policy})`, async function () {
      // Nothing listens there: each list is refused at once, and etcd3's circuit breaker opens.
      const etcd = `127.0.0.1:${await freePort()}`;
      const client = echoClient(etcdTarget('down-at-start', [etcd]), {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [policy]: {} }] }),
      });
      const details: string[] = [];
      try {
        // Across several list retries, so both the refused connection and the open breaker are seen.
        const untilMs = Date.now() + 2500;
        for (let i = 0; i < 50 && Date.now() < untilMs; i++) {
          const err = await unary(client, 'x', { deadline: Date.now() + 1000 }).then(() => undefined, (e: grpc.ServiceError) => e);
          expect(err?.code, err?.details).to.equal(grpc.status.UNAVAILABLE);
          details.push(err!.details);
          await new Promise(resolve => setTimeout(resolve, 100));
        }
      } finally {
        client.close();
      }
      expect(details.length).to.be.at.least(5);
      const pattern = new RegExp(`^etcd resolver: cannot list service 'down-at-start' from etcd ${etcd}: unreachable since \\d\\d:\\d\\d:\\d\\d UTC \\(\\d+\\.\\d s\\), retrying; last error: connect ECONNREFUSED ${etcd}$`);
      for (const text of details) expect(text).to.match(pattern);
      console.log(`      ${details[details.length - 1]}`);
    });
  }

  it('a gRPC server that is not etcd (ETCD_ENDPOINTS pointing at the wrong port) is named as such', async function () {
    const notEtcd = await startEchoServer({ name: 'not-etcd' });
    const client = echoClient(etcdTarget('wrong-server', [notEtcd.address]), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_least_request: {} }] }),
    });
    try {
      const err = await unary(client, 'x', { deadline: Date.now() + 5000 }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code, err?.details).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.include("cannot list service 'wrong-server'")
        .and.include('this server answers gRPC but is not etcd: check the etcd hosts, or ETCD_ENDPOINTS');
      console.log(`      ${err?.details}`);
    } finally {
      client.close();
      notEtcd.server.forceShutdown();
    }
  });
});
