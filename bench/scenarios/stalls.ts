/**
 * `stalls`: one of 5 replicas blocks its event loop for 100 ms at the start of
 * every second (a GC-like pause: nothing is served meanwhile).
 */
import { degradedReplicaScenario } from './degraded-replica';

export const STALL_EVERY_MS = 1000;
export const STALL_FOR_MS = 100;

export const stallsScenario = degradedReplicaScenario({
  name: 'stalls',
  title: 'One replica stalling 100 ms every second',
  what: `stalls ${STALL_FOR_MS} ms every ${STALL_EVERY_MS / 1000} s (event loop blocked, GC-like)`,
  behaviour: { stall: { everyMs: STALL_EVERY_MS, forMs: STALL_FOR_MS } },
  loadFraction: 0.3,
  limitRatio: 1.2,
});
