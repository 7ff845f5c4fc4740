/**
 * ORCA's `OrcaLoadReport` on the wire, by hand. Not through grpc-js: 1.14's
 * `loadOrcaProto()` caches nothing, so it re-parses orca.proto on every call; the
 * message is flat, so a few lines encode it without a schema.
 * Field numbers (orca_load_report.proto): cpu_utilization 1, mem_utilization 2,
 * rps 3 (deprecated, not written), request_cost 4, utilization 5,
 * rps_fractional 6, eps 7, named_metrics 8, application_utilization 9.
 */

/** The fields of an ORCA load report; absent ones are not sent (proto3: 0 is the same as absent). */
export interface OrcaLoadReport {
  /** CPU utilization, [0, 1] (`cpu_utilization`); not written by our reporter. */
  cpuUtilization?: number;
  /** Memory utilization, [0, 1] (`mem_utilization`); not written by our reporter. */
  memUtilization?: number;
  /** Requests per second (`rps_fractional`): grpc-js weighted_round_robin's numerator. */
  rpsFractional?: number;
  /** Errors per second. */
  eps?: number;
  /** Application-defined utilization (`application_utilization`): weighted_round_robin's denominator (it falls back to nothing else). */
  applicationUtilization?: number;
  /** Application-defined costs of this request, by name (`request_cost`); meaningful per call only. */
  requestCost?: Readonly<Record<string, number>>;
  /** Application-defined utilizations, [0, 1], by resource name (`utilization`). */
  utilization?: Readonly<Record<string, number>>;
  /** Any other application-defined figures, by name (`named_metrics`). */
  namedMetrics?: Readonly<Record<string, number>>;
}

const DOUBLE_FIELDS = [
  [1, 'cpuUtilization'],
  [2, 'memUtilization'],
  [6, 'rpsFractional'],
  [7, 'eps'],
  [9, 'applicationUtilization'],
] as const;
const MAP_FIELDS = [
  [4, 'requestCost'],
  [5, 'utilization'],
  [8, 'namedMetrics'],
] as const;
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

class Writer {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  varint(value: number): void {
    const bytes: number[] = [];
    let v = value >>> 0;
    while (v > 0x7f) {
      bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    bytes.push(v);
    this.push(Buffer.from(bytes));
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  double(field: number, value: number): void {
    this.tag(field, WIRE_FIXED64);
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(value, 0);
    this.push(b);
  }

  bytes(field: number, value: Buffer): void {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.varint(value.length);
    this.push(value);
  }

  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** Serializes `report` as an `OrcaLoadReport` message. */
export function encodeOrcaLoadReport(report: OrcaLoadReport): Buffer {
  const w = new Writer();
  for (const [field, key] of DOUBLE_FIELDS) {
    const value = report[key];
    if (value !== undefined && value !== 0) w.double(field, value);
  }
  for (const [field, key] of MAP_FIELDS) {
    const map = report[key];
    if (map === undefined) continue;
    for (const [name, value] of Object.entries(map)) {
      const entry = new Writer();
      entry.bytes(1, Buffer.from(name, 'utf8'));
      entry.double(2, value);
      w.bytes(field, entry.finish());
    }
  }
  return w.finish();
}

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer, readonly end = buf.length) {}

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.offset >= this.end) throw new Error('truncated varint');
      const byte = this.buf[this.offset++];
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }

  double(): number {
    if (this.offset + 8 > this.end) throw new Error('truncated double');
    const value = this.buf.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_FIXED64) this.offset += 8;
    else if (wire === WIRE_LENGTH_DELIMITED) this.offset += this.varint();
    else if (wire === WIRE_FIXED32) this.offset += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.offset > this.end) throw new Error('truncated field');
  }
}

function readMapEntry(r: Reader, into: Record<string, number>): void {
  const length = r.varint();
  const end = r.offset + length;
  if (end > r.end) throw new Error('truncated map entry');
  const entry = new Reader(r.buf, end);
  entry.offset = r.offset;
  let name = '';
  let value = 0;
  while (entry.offset < end) {
    const tag = entry.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) {
      const length = entry.varint();
      if (entry.offset + length > end) throw new Error('truncated map key');
      name = r.buf.toString('utf8', entry.offset, entry.offset + length);
      entry.offset += length;
    } else if (field === 2 && wire === WIRE_FIXED64) {
      value = entry.double();
    } else {
      entry.skip(wire);
    }
  }
  into[name] = value;
  r.offset = end;
}

/** Parses an `OrcaLoadReport`; unknown fields are skipped; throws on a malformed message. */
export function decodeOrcaLoadReport(buf: Buffer): OrcaLoadReport {
  const report: { -readonly [K in keyof OrcaLoadReport]: OrcaLoadReport[K] } = {};
  const r = new Reader(buf);
  while (r.offset < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    const double = DOUBLE_FIELDS.find(([f]) => f === field);
    if (double !== undefined && wire === WIRE_FIXED64) {
      report[double[1]] = r.double();
      continue;
    }
    const map = MAP_FIELDS.find(([f]) => f === field);
    if (map !== undefined && wire === WIRE_LENGTH_DELIMITED) {
      const into: Record<string, number> = { ...(report[map[1]] ?? {}) };
      readMapEntry(r, into);
      report[map[1]] = into;
      continue;
    }
    r.skip(wire);
  }
  return report;
}
