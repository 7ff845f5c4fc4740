/**
 * `overload`: one of 5 replicas serves one call at a time, 5 ms each (about 200
 * calls/s), so round_robin's fifth of the load queues there without bound.
 */
import { degradedReplicaScenario } from './degraded-replica';

export const OVERLOAD_SERVICE_MS = 5;

export const overloadScenario = degradedReplicaScenario({
  name: 'overload',
  title: 'One replica serving one call at a time',
  what: `serves one call at a time (${OVERLOAD_SERVICE_MS} ms each, the others queue)`,
  behaviour: { maxConcurrent: 1, latencyMs: OVERLOAD_SERVICE_MS },
  loadFraction: 0.3,
  limitRatio: 1.2,
});
