/**
 * Consul's `Registration`: a service on the local agent with a TTL check, passed at once
 * and every TTL/3. The agent forgetting it (404 on a pass: restarted without its data, or
 * reaped after `DeregisterCriticalServiceAfter`) registers it again; `setServing(false)`
 * fails the check, so `?passing` queries drop it at once; `close()` deregisters.
 */
import { tracer } from '../../common/grpc-experimental';
import { WarnOnce } from '../../common/warn-once';
import { RegistrationCore } from '../../discovery/registration-core';
import { type EndpointUpdate, type ResolvedRegistrationOptions } from '../../discovery/registration-options';
import { resolveEndpointUpdate } from '../../discovery/registration-options';
import { type ResolvedConsulOptions } from './connection';
import { ConsulHttpError, consulRequest, describeNetworkError, notConsul, snippet, type ConsulResponse } from './consul-http';
import { consulCheckId, consulServiceId, encodeMeta, encodeTags, type ServiceDefinition } from './health-codec';

const trace = tracer('consul_registry');
const COMPONENT = 'registerEndpoint';
/** Floor and ceiling of the time one agent call may take. */
const MIN_OP_TIMEOUT_MS = 500;
const MAX_OP_TIMEOUT_MS = 5_000;
const errorLines = new WarnOnce();

/** The ACL rule a token needs to register a service. */
export function writeRuleHint(service: string): string {
  return `the token needs service:write on '${service}' (ACL rule: service "${service}" { policy = "write" })`;
}

export class ConsulRegistration extends RegistrationCore {
  /** The Consul service ID, `<service>:<address>`. */
  readonly key: string;
  /** The TTL check, `service:<ID>`. */
  readonly checkId: string;
  private readonly opTimeoutMs: number;
  private readonly heartbeatMs: number;
  /** The agent must (re-)register the service before anything else. */
  private needsRegister = true;
  /** The check status the agent holds differs from what `setServing` wants. */
  private healthDirty = false;
  private nextBeatAtMs = 0;
  private lastOkMs = Date.now();

  constructor(options: ResolvedRegistrationOptions, private readonly consul: ResolvedConsulOptions) {
    super(options, text => trace(text));
    this.key = consulServiceId(options.service, options.address);
    this.checkId = consulCheckId(this.key);
    this.heartbeatMs = this.ttlMs / 3;
    this.opTimeoutMs = Math.min(MAX_OP_TIMEOUT_MS, Math.max(MIN_OP_TIMEOUT_MS, this.heartbeatMs));
    try {
      this.definition();
      this.begin(`consul|${consul.baseUrl}|${this.key}`, `'${this.key}' is already registered by this process on the agent at ${consul.baseUrl}`);
    } catch (err) {
      this.metrics?.close();
      throw err;
    }
  }

  /** The TTL check the service is registered with (`service:<ID>`). */
  get leaseId(): string | undefined {
    return this.currentState === 'closed' ? undefined : this.checkId;
  }

  protected override get registryName(): string {
    return 'Consul';
  }

  override async update(update: EndpointUpdate): Promise<void> {
    const u = resolveEndpointUpdate(update, 'Registration.update');
    // Refuse now what the agent would refuse in the loop.
    encodeMeta(u.metadata ?? this.value.metadata, u.weight ?? this.value.weight, u.priority ?? this.value.priority, 'Registration.update');
    encodeTags(u.metadata ?? this.value.metadata, 'Registration.update');
    return super.update(update);
  }

  protected override servingChanged(): void {
    this.healthDirty = true;
    this.wakeLoop(true);
  }

  protected registerTimeoutMessage(timeoutMs: number): string {
    const last = this.lastError === undefined ? '' : ` (last error: ${(this.lastError as Error)?.message ?? String(this.lastError)})`;
    return `registerEndpoint: the Consul agent at ${this.consul.baseUrl} did not accept '${this.key}' within ${timeoutMs} ms${last}`;
  }

  private definition(): ServiceDefinition {
    const [host, port] = splitAddress(this.address);
    const weight = this.value.weight;
    return {
      ID: this.key,
      Name: this.service,
      Address: host,
      Port: port,
      Tags: encodeTags(this.value.metadata, COMPONENT),
      Meta: encodeMeta(this.value.metadata, weight, this.value.priority, COMPONENT),
      // Consul's weights are integers ≥ 1; Meta.weight keeps the exact value (0 = draining, fractions).
      Weights: { Passing: Math.max(1, Math.round(weight)), Warning: 1 },
      Check: {
        CheckID: this.checkId,
        Name: `grpc-etcd-lb TTL ${this.options.ttlSeconds}s`,
        TTL: `${this.options.ttlSeconds}s`,
        DeregisterCriticalServiceAfter: `${this.consul.deregisterCriticalAfterSeconds}s`,
        Status: this.servingWanted && !this.closing ? 'passing' : 'critical',
        Notes: 'passed every TTL/3 by the process; failed by setServing(false)',
      },
    };
  }

  protected async step(): Promise<void> {
    try {
      await this.stepOnce();
      this.lastOkMs = Date.now();
    } catch (err) {
      if (this.currentState === 'registered' && Date.now() - this.lastOkMs > this.ttlMs) {
        this.markLost('unreachable', this.checkId, err);
      }
      throw err;
    }
  }

  private async stepOnce(): Promise<void> {
    if (this.needsRegister || this.writtenGeneration < this.valueGeneration) {
      const again = !this.needsRegister;
      this.operation = again ? 'update' : 'register';
      const generation = this.valueGeneration;
      const serving = this.servingWanted;
      await this.call('PUT', '/v1/agent/service/register', this.definition());
      this.healthDirty = this.servingWanted !== serving;
      this.nextBeatAtMs = Date.now() + this.heartbeatMs;
      this.valueWritten(generation);
      if (!again) {
        this.needsRegister = false;
        this.markRegistered(this.checkId, false);
      }
      return;
    }
    if (this.healthDirty || Date.now() >= this.nextBeatAtMs) {
      this.operation = 'heartbeat';
      const serving = this.servingWanted;
      const verb = serving ? 'pass' : 'fail';
      const note = serving ? 'serving' : 'setServing(false)';
      const response = await this.call('PUT', `/v1/agent/check/${verb}/${encodeURIComponent(this.checkId)}?note=${encodeURIComponent(note)}`, undefined, true);
      if (unknownCheck(response)) {
        trace(`${this.key}: the agent does not know ${this.checkId} (${response.status} ${snippet(response.body)}): registering again`);
        this.needsRegister = true;
        if (this.currentState === 'registered') this.markLost('lease-lost', this.checkId);
        return;
      }
      this.healthDirty = this.servingWanted !== serving;
      this.nextBeatAtMs = Date.now() + this.heartbeatMs;
      // Back after an outage longer than the TTL, and the agent still had us.
      if (this.currentState === 'lost') this.markRegistered(this.checkId, true);
      return;
    }
    await this.sleep(Math.max(1, this.nextBeatAtMs - Date.now()), true);
  }

  /** One agent call; a non-2xx answer throws an error naming the cause, except "unknown check" with `checkCall` (returned). */
  private async call(method: 'PUT', path: string, body?: unknown, checkCall = false): Promise<ConsulResponse> {
    let response: ConsulResponse;
    try {
      response = await consulRequest(this.consul, { method, path, body, timeoutMs: this.opTimeoutMs });
    } catch (err) {
      throw new Error(describeNetworkError(this.consul, err));
    }
    const what = `${method} ${path.split('?')[0]}`;
    if (response.status >= 200 && response.status < 300) return response;
    if (checkCall && unknownCheck(response)) return response;
    if (response.status === 403) {
      const message = `consul registry: the agent at ${this.consul.baseUrl} denied ${this.operation} of '${this.key}' (403 ${snippet(response.body)}): ${writeRuleHint(this.service)}`;
      errorLines.warn(message, `${this.consul.baseUrl}\n${this.key}\n403`);
      throw new ConsulHttpError(403, response.body, response.headers, message);
    }
    const message = response.status === 404 || response.status === 405
      ? notConsul(this.consul, what, response)
      : `${this.consul.baseUrl} answered ${what} with HTTP ${response.status}: ${snippet(response.body)}`;
    throw new ConsulHttpError(response.status, response.body, response.headers, message);
  }

  protected async deregister(deadline: number): Promise<void> {
    if (this.currentState === 'registering' && this.needsRegister) return;
    const timeoutMs = Math.max(1, deadline - Date.now());
    try {
      const response = await consulRequest(this.consul, { method: 'PUT', path: `/v1/agent/service/deregister/${encodeURIComponent(this.key)}`, timeoutMs });
      if (response.status >= 300 && response.status !== 404) throw new Error(`${this.consul.baseUrl} answered HTTP ${response.status}: ${snippet(response.body)}`);
      trace(`${this.key}: closed, deregistered`);
    } catch (err) {
      this.reportError('close', err instanceof Error && !(err as NodeJS.ErrnoException).code ? err : new Error(describeNetworkError(this.consul, err)));
    }
  }

  protected release(): void {
    // The HTTP agent is shared by every connection to this address; nothing is held per registration.
  }
}

/** The agent does not know the check: 404 `Unknown check ID` (Consul ≥ 1.11; older: 500 `… does not have associated TTL`). */
function unknownCheck(response: ConsulResponse): boolean {
  return (response.status === 404 && /check/i.test(response.body)) || (response.status === 500 && /unknown check|does not have associated TTL/i.test(response.body));
}

/** `10.0.0.5:50051` / `[::1]:50051` → host and port (the core validated the address). */
function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(address.slice(colon + 1))];
}
