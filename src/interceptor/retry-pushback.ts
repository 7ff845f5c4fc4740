/**
 * Server pushback (gRFC A6): a `grpc-retry-pushback-ms` trailer tells the client
 * how long to wait before retrying, or, when negative or not a number, not to retry.
 */
import { type Metadata } from '@grpc/grpc-js';

/** The trailer a server sets to push back on retries. */
export const PUSHBACK_KEY = 'grpc-retry-pushback-ms';

/** No pushback in the trailers: use the normal backoff. */
export const NO_PUSHBACK = -1;
/** The server said not to retry (negative or invalid value). */
export const PUSHBACK_STOP = -2;

/**
 * Reads the pushback from trailers: a delay ≥ 0 in ms, `NO_PUSHBACK`, or `PUSHBACK_STOP`.
 * Only a plain non-negative decimal integer is a delay (A6: anything else means stop).
 */
export function readPushbackMs(trailers: Metadata | undefined | null): number {
  const values = trailers?.get(PUSHBACK_KEY);
  if (!values || values.length === 0) return NO_PUSHBACK;
  const text = typeof values[0] === 'string' ? values[0].trim() : '';
  if (!/^\d{1,10}$/.test(text)) return PUSHBACK_STOP;
  return Number(text);
}
