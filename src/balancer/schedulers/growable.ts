/**
 * Typed arrays that grow by doubling, for schedulers whose endpoints come and go
 * one at a time: an add is amortised O(1) and the arrays are never rebuilt per event.
 */

/** `array` itself when it holds at least `length` elements, else a copy twice as large (at least `length`). */
export function ensureFloat64(array: Float64Array<ArrayBuffer>, length: number): Float64Array<ArrayBuffer> {
  if (array.length >= length) return array;
  const grown = new Float64Array(Math.max(length, 2 * array.length, 8));
  grown.set(array);
  return grown;
}

/** As `ensureFloat64`, for Int32Array. */
export function ensureInt32(array: Int32Array<ArrayBuffer>, length: number): Int32Array<ArrayBuffer> {
  if (array.length >= length) return array;
  const grown = new Int32Array(Math.max(length, 2 * array.length, 8));
  grown.set(array);
  return grown;
}

/** As `ensureFloat64`, for Uint8Array. */
export function ensureUint8(array: Uint8Array<ArrayBuffer>, length: number): Uint8Array<ArrayBuffer> {
  if (array.length >= length) return array;
  const grown = new Uint8Array(Math.max(length, 2 * array.length, 8));
  grown.set(array);
  return grown;
}
