/**
 * XXH64 (Yann Collet's xxHash, 64-bit), as gRFC A68 random subsetting specifies
 * (`XXH64(address, seed)`), so our random subsets order endpoints the way grpc-go's do.
 *
 * Why our own and not an npm package: the well-kept one (`xxhash-wasm`) is
 * instantiated asynchronously, and an LB policy's `updateAddressList` is
 * synchronous; native bindings (`@node-rs/xxhash`) need a prebuilt binary per
 * platform; `xxhashjs` is unmaintained. Hashing happens once per address per
 * seed (cached by the caller), never per pick, so BigInt arithmetic costs
 * nothing that matters. Checked against the reference vectors in the tests.
 */
const MASK = (1n << 64n) - 1n;
const P1 = 0x9E3779B185EBCA87n;
const P2 = 0xC2B2AE3D27D4EB4Fn;
const P3 = 0x165667B19E3779F9n;
const P4 = 0x85EBCA77C2B2AE63n;
const P5 = 0x27D4EB2F165667C5n;

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & MASK;
}

function round(acc: bigint, input: bigint): bigint {
  acc = (acc + input * P2) & MASK;
  return (rotl(acc, 31n) * P1) & MASK;
}

function mergeRound(acc: bigint, val: bigint): bigint {
  acc ^= round(0n, val);
  return (acc * P1 + P4) & MASK;
}

function u64(bytes: Uint8Array, i: number): bigint {
  let v = 0n;
  for (let b = 7; b >= 0; b--) v = (v << 8n) | BigInt(bytes[i + b]);
  return v;
}

function u32(bytes: Uint8Array, i: number): bigint {
  return BigInt((bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0);
}

/** XXH64 of `input` (UTF-8 for strings) with a 64-bit `seed`, as an unsigned BigInt. */
export function xxhash64(input: string | Uint8Array, seed: bigint = 0n): bigint {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const len = bytes.length;
  seed &= MASK;
  let i = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & MASK;
    let v2 = (seed + P2) & MASK;
    let v3 = seed;
    let v4 = (seed - P1) & MASK;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, u64(bytes, i));
      v2 = round(v2, u64(bytes, i + 8));
      v3 = round(v3, u64(bytes, i + 16));
      v4 = round(v4, u64(bytes, i + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & MASK;
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = (seed + P5) & MASK;
  }
  h = (h + BigInt(len)) & MASK;
  for (; i + 8 <= len; i += 8) {
    h ^= round(0n, u64(bytes, i));
    h = (rotl(h, 27n) * P1 + P4) & MASK;
  }
  if (i + 4 <= len) {
    h ^= (u32(bytes, i) * P1) & MASK;
    h = (rotl(h, 23n) * P2 + P3) & MASK;
    i += 4;
  }
  for (; i < len; i++) {
    h ^= (BigInt(bytes[i]) * P5) & MASK;
    h = (rotl(h, 11n) * P1) & MASK;
  }
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  h ^= h >> 32n;
  return h;
}
