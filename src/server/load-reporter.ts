/**
 * A server interceptor that puts an ORCA load report in every call's trailers (and
 * optionally out of band) for grpc-js's `weighted_round_robin`, whose weight is
 * `rps_fractional / application_utilization`. Utilization defaults to the event loop's,
 * which is what limits a Node server. `grpc.server_call_metric_recording` would replace it.
 */
import * as grpc from '@grpc/grpc-js';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { encodeOrcaLoadReport, type OrcaLoadReport } from './orca-load-report';

/** The per-call trailer grpc-js's weighted_round_robin reads. */
export const ORCA_LOAD_REPORT_HEADER = 'endpoint-load-metrics-bin';

/**
 * Options of `loadReportServerOptions()` and `createLoadReporter()`; every field is optional.
 * Invalid values throw an Error naming the option.
 */
export interface LoadReportOptions {
  /** Window of the rates and of the event-loop utilization. Defaults to 1000. */
  windowMs?: number;
  /** The report attached to calls is re-encoded at most this often. Defaults to 100. */
  refreshMs?: number;
  /** `application_utilization` (1 = at capacity); `undefined` from it means the default. Defaults to the event loop's. */
  utilization?: () => number | undefined;
  /** Monotonic clock in ms. Defaults to `performance.now`. */
  nowMs?: () => number;
}

/** The defaults of {@link LoadReportOptions} that have a value (`utilization` defaults to the event loop's). Frozen. */
export const DEFAULT_LOAD_REPORT_OPTIONS = Object.freeze({
  /** Window of the rates and of the event-loop utilization, in ms. */
  windowMs: 1000,
  /** The per-call report is re-encoded at most this often, in ms. */
  refreshMs: 100,
});

/** A server's own load figures, as reported. */
export interface LoadSnapshot {
  /** Calls finished per second over the window, any status (ORCA `rps_fractional`). */
  readonly rpsFractional: number;
  /** Calls finished with a non-OK status per second over the window (ORCA `eps`). */
  readonly eps: number;
  /** `utilization()` if given, else the event loop's utilization over the window (ORCA `application_utilization`; 1 = at capacity). */
  readonly applicationUtilization: number;
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`loadReportServerOptions: ${name} must be a positive number, got ${String(value)}`);
  return value;
}

/** Measures a server's load and serves it as ORCA reports (per call and, when asked, out of band). */
export class LoadReporter {
  /** Add to the server's `interceptors` (or use `serverOptions()`). */
  readonly interceptor: grpc.ServerInterceptor;
  private readonly windowMs: number;
  private readonly refreshMs: number;
  private readonly nowMs: () => number;
  private readonly utilizationSource: (() => number | undefined) | undefined;
  private bucketStartMs: number;
  private calls = 0;
  private errors = 0;
  private previousCalls = 0;
  private previousErrors = 0;
  private elu: EventLoopUtilization;
  private eluUtilization = 0;
  private encoded: Buffer;
  private encodedAtMs = Number.NEGATIVE_INFINITY;
  private readonly outOfBand = new Set<grpc.ServerMetricRecorder>();
  private oobTimer: NodeJS.Timeout | undefined;

  constructor(options: LoadReportOptions = {}) {
    this.windowMs = positive('windowMs', options.windowMs ?? DEFAULT_LOAD_REPORT_OPTIONS.windowMs);
    this.refreshMs = positive('refreshMs', options.refreshMs ?? DEFAULT_LOAD_REPORT_OPTIONS.refreshMs);
    if (options.utilization !== undefined && typeof options.utilization !== 'function') {
      throw new Error(`loadReportServerOptions: utilization must be a function, got ${typeof options.utilization}`);
    }
    this.utilizationSource = options.utilization;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.bucketStartMs = this.nowMs();
    this.elu = performance.eventLoopUtilization();
    this.encoded = encodeOrcaLoadReport({});
    // One responder for every call: it needs nothing of the call.
    const responder: grpc.Responder = {
      sendStatus: (status, next) => {
        const metadata = status.metadata?.clone() ?? new grpc.Metadata();
        metadata.set(ORCA_LOAD_REPORT_HEADER, this.report(status.code));
        next({ ...status, metadata });
      },
    };
    this.interceptor = (_method, call) => new grpc.ServerInterceptingCall(call, responder);
  }

  /** `base` with this reporter's interceptor appended to its `interceptors`. */
  serverOptions(base: grpc.ServerOptions = {}): grpc.ServerOptions {
    if (base['grpc.server_call_metric_recording']) {
      throw new Error('loadReportServerOptions: grpc.server_call_metric_recording would replace the load report with grpc-js\'s own; leave it unset');
    }
    return { ...base, interceptors: [...(base.interceptors ?? []), this.interceptor] };
  }

  /** Also serves the figures out of band (`OpenRcaService`). Call before `bindAsync`; returns a disposer. */
  serveOutOfBand(server: grpc.Server): () => void {
    const recorder = new grpc.ServerMetricRecorder();
    recorder.addToServer(server);
    this.outOfBand.add(recorder);
    const update = (): void => {
      const s = this.snapshot();
      for (const r of this.outOfBand) {
        r.setQpsMetric(s.rpsFractional);
        r.setEpsMetric(s.eps);
        r.setApplicationUtilizationMetric(s.applicationUtilization);
      }
    };
    update();
    this.oobTimer ??= setInterval(update, this.refreshMs).unref();
    return () => {
      this.outOfBand.delete(recorder);
      if (this.outOfBand.size === 0 && this.oobTimer !== undefined) {
        clearInterval(this.oobTimer);
        this.oobTimer = undefined;
      }
    };
  }

  /** The figures now (sliding window). */
  snapshot(): LoadSnapshot {
    const nowMs = this.nowMs();
    this.roll(nowMs);
    // Sliding window: the previous bucket weighs what is left of it in the window.
    const into = Math.min(1, (nowMs - this.bucketStartMs) / this.windowMs);
    const seconds = this.windowMs / 1000;
    const utilization = this.utilizationSource?.() ?? this.eluUtilization;
    return {
      rpsFractional: (this.calls + this.previousCalls * (1 - into)) / seconds,
      eps: (this.errors + this.previousErrors * (1 - into)) / seconds,
      applicationUtilization: Number.isFinite(utilization) && utilization > 0 ? utilization : 0,
    };
  }

  /** Counts a finished call; returns the report to attach (re-encoded at most every `refreshMs`). */
  private report(code: grpc.status): Buffer {
    const nowMs = this.nowMs();
    // Roll first: a call counted into a bucket that then rolls would weigh only what is left of it.
    this.roll(nowMs);
    this.calls++;
    if (code !== grpc.status.OK) this.errors++;
    if (nowMs - this.encodedAtMs >= this.refreshMs) {
      const s = this.snapshot();
      const report: OrcaLoadReport = { rpsFractional: s.rpsFractional, eps: s.eps, applicationUtilization: s.applicationUtilization };
      this.encoded = encodeOrcaLoadReport(report);
      this.encodedAtMs = nowMs;
    }
    return this.encoded;
  }

  private roll(nowMs: number): void {
    const elapsed = nowMs - this.bucketStartMs;
    if (elapsed < this.windowMs) return;
    const skipped = elapsed >= 2 * this.windowMs;
    this.previousCalls = skipped ? 0 : this.calls;
    this.previousErrors = skipped ? 0 : this.errors;
    this.calls = 0;
    this.errors = 0;
    this.bucketStartMs = skipped ? nowMs : this.bucketStartMs + this.windowMs;
    const elu = performance.eventLoopUtilization();
    this.eluUtilization = performance.eventLoopUtilization(elu, this.elu).utilization;
    this.elu = elu;
  }
}

/** A `LoadReporter` with `options`. */
export function createLoadReporter(options: LoadReportOptions = {}): LoadReporter {
  return new LoadReporter(options);
}

/**
 * `grpc.Server` options (`base` merged) that report the server's load in every call's
 * trailers. For out-of-band reports, use `createLoadReporter().serveOutOfBand(server)`.
 */
export function loadReportServerOptions(options: LoadReportOptions = {}, base: grpc.ServerOptions = {}): grpc.ServerOptions {
  return createLoadReporter(options).serverOptions(base);
}
