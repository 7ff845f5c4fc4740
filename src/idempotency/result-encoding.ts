/**
 * What the interceptor stores of a call and how it replays it. grpc-js gives a server
 * interceptor decoded messages and only the response *serializer*, so the response is kept
 * as its structured clone (`v8.serialize`), accepted only if that clone serializes to the
 * same wire bytes as the original: a replay then sends exactly those bytes. The request is
 * hashed from its structured clone too (same wire message → same decoded object → same hash).
 */
import { createHash } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import { Metadata, type MetadataValue } from '@grpc/grpc-js';
import { type IdempotencyResult } from './idempotency-store';

/** Trailer added to every replayed answer. */
export const REPLAYED_TRAILER = 'idempotency-replayed';

/** Hex SHA-256 of the decoded request's structured clone. */
export function hashRequest(request: unknown): string {
  return createHash('sha256').update(serialize(request)).digest('hex');
}

/**
 * The stored form of `response`, or an error text when it cannot be replayed exactly (e.g. a
 * class instance whose serializer needs its prototype).
 */
export function encodeResponse(response: unknown, responseSerialize: (value: unknown) => Buffer): Buffer | string {
  try {
    const encoded = serialize(response);
    const wire = responseSerialize(response);
    const replayed = responseSerialize(deserialize(encoded));
    return wire.equals(replayed) ? encoded : 'its structured clone serializes to other bytes';
  } catch (err) {
    return (err as Error)?.message ?? String(err);
  }
}

/** The response to send on replay. */
export function decodeResponse(stored: Buffer): unknown {
  return deserialize(stored);
}

/** Metadata (headers or trailers) as `[key, value]` pairs, `-bin` values base64. */
export function encodeMetadata(metadata: Metadata | null | undefined): Array<readonly [string, string]> {
  const pairs: Array<readonly [string, string]> = [];
  if (!metadata) return pairs;
  const map = metadata.toJSON() as Record<string, MetadataValue[]>;
  for (const key of Object.keys(map)) {
    for (const value of map[key]) pairs.push([key, Buffer.isBuffer(value) ? value.toString('base64') : value]);
  }
  return pairs;
}

/** Metadata from `encodeMetadata`'s pairs (empty for none). */
export function decodeMetadata(pairs: ReadonlyArray<readonly [string, string]> | undefined): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of pairs ?? []) {
    if (key.endsWith('-bin')) metadata.add(key, Buffer.from(value, 'base64'));
    else metadata.add(key, value);
  }
  return metadata;
}

/** The trailers of a replay: the recorded ones plus `idempotency-replayed: true`. */
export function replayTrailers(pairs: ReadonlyArray<readonly [string, string]>): Metadata {
  const metadata = decodeMetadata(pairs);
  metadata.set(REPLAYED_TRAILER, 'true');
  return metadata;
}

/** What is stored of a call that ended with `status` (its response encoded, its headers as pairs). */
export function recordedResult(
  requestHash: string,
  status: { code: number; details: string; metadata?: Metadata | null },
  response: Buffer | undefined,
  headers: ReadonlyArray<readonly [string, string]> | undefined,
): IdempotencyResult {
  return { requestHash, code: status.code, details: status.details, response, trailers: encodeMetadata(status.metadata), ...(headers === undefined ? {} : { headers }) };
}
