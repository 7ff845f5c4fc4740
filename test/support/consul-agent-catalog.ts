/**
 * The state behind the Consul agent double (consul-agent-double.ts): services and their
 * checks, the raft-like index, TTL clocks, the reaper of `DeregisterCriticalServiceAfter`,
 * and health entries as `/v1/health/service` returns them. No HTTP here.
 */

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface Check {
  readonly id: string;
  readonly name: string;
  readonly serviceId: string;
  status: CheckStatus;
  output: string;
  readonly ttlMs: number | undefined;
  readonly deregisterAfterMs: number | undefined;
  expiry: NodeJS.Timeout | undefined;
  criticalSinceMs: number | undefined;
  modifyIndex: number;
}

export interface ServiceRecord {
  readonly node: string;
  readonly nodeAddress: string;
  readonly definition: Record<string, unknown>;
  readonly modifyIndex: number;
  readonly createIndex: number;
}

/** `10s`, `250ms`, `1m`, `1h` → ms (Go durations as Consul takes them); undefined when malformed. */
export function parseGoDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** Consul's checks on a service definition; returns its 400 text, or undefined. */
function invalidDefinition(d: Record<string, unknown>): string | undefined {
  const port = d.Port ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return 'Invalid Port';
  const weights = d.Weights as { Passing?: number } | undefined;
  if (weights && (!Number.isInteger(weights.Passing) || (weights.Passing as number) < 1)) return 'Passing must be greater than 0';
  const meta = (d.Meta ?? {}) as Record<string, unknown>;
  if (Object.keys(meta).length > 64) return 'Node metadata cannot contain more than 64 key/value pairs';
  for (const [key, value] of Object.entries(meta)) {
    if (!/^[A-Za-z0-9_-]+$/.test(key) || key.length > 128) return `Key "${key}" has invalid characters or is too long`;
    if (key.startsWith('consul-')) return `Key prefix 'consul-' is reserved for internal use`;
    if (typeof value !== 'string' || value.length > 512) return `Value for key "${key}" must be a string of at most 512 characters`;
  }
  return undefined;
}

export class ConsulCatalog {
  /** The last raft index. */
  index: number;
  /** Index of the node registrations (the floor of every health index). */
  nodeIndex: number;
  private readonly services = new Map<string, ServiceRecord>();
  private readonly checks = new Map<string, Check>();
  private readonly checksByService = new Map<string, Set<string>>();
  /** Service IDs by name, so a health query costs its own instances only. */
  private readonly idsByName = new Map<string, Set<string>>();
  /** Index of the last change of each service name (blocking queries wait on it). */
  private readonly serviceIndex = new Map<string, number>();

  /** `onChange` is told the service name after every change of its instances or their checks. */
  constructor(startIndex: number, private readonly reapFloorMs: number, private readonly onChange: (service: string) => void) {
    this.index = startIndex;
    this.nodeIndex = startIndex;
  }

  /** What a blocking query on `service` compares its `index` with. */
  indexOf(service: string): number {
    return this.serviceIndex.get(service) ?? this.nodeIndex;
  }

  serviceIds(): string[] {
    return [...this.services.keys()];
  }

  service(id: string): ServiceRecord | undefined {
    return this.services.get(id);
  }

  check(id: string): Check | undefined {
    return this.checks.get(id);
  }

  /** Forgets everything (a dev-mode agent restart); the index restarts at `index`. */
  reset(index: number): void {
    this.close();
    this.services.clear();
    this.checks.clear();
    this.checksByService.clear();
    this.idsByName.clear();
    this.serviceIndex.clear();
    this.index = index;
    this.nodeIndex = index;
  }

  /** Stops every TTL clock. */
  close(): void {
    for (const check of this.checks.values()) clearTimeout(check.expiry);
  }

  private bump(service: string): void {
    this.index++;
    this.serviceIndex.set(service, this.index);
    this.onChange(service);
  }

  /** Stores a service (agent or catalog); returns Consul's 400 text for a bad definition. */
  register(node: string, nodeAddress: string, d: Record<string, unknown>, replaceChecks: boolean): string | undefined {
    const invalid = invalidDefinition(d);
    if (invalid) return invalid;
    const name = d.Name as string;
    const id = typeof d.ID === 'string' && d.ID !== '' ? d.ID : name;
    const weights = d.Weights as { Passing?: number; Warning?: number } | undefined;
    const definition = { ...d, ID: id, Tags: d.Tags ?? [], Meta: d.Meta ?? {}, Weights: { Passing: weights?.Passing ?? 1, Warning: weights?.Warning ?? 1 } };
    const checkDefs = (d.Check ? [d.Check] : Array.isArray(d.Checks) ? d.Checks : []) as Array<Record<string, unknown>>;
    const newChecks: Check[] = [];
    for (const [i, c] of checkDefs.entries()) {
      const ttlMs = c.TTL === undefined ? undefined : parseGoDuration(c.TTL);
      if (c.TTL !== undefined && ttlMs === undefined) return `Invalid check TTL "${String(c.TTL)}"`;
      const deregisterAfterMs = c.DeregisterCriticalServiceAfter === undefined ? undefined : parseGoDuration(c.DeregisterCriticalServiceAfter);
      // A single Check is `service:<ID>`; Checks are numbered from 1.
      const checkId = typeof c.CheckID === 'string' && c.CheckID !== '' ? c.CheckID : d.Check ? `service:${id}` : `service:${id}:${i + 1}`;
      const existing = this.checks.get(checkId);
      // A TTL check starts critical unless Status is given; re-registering keeps the status it had.
      const status = (c.Status as CheckStatus | undefined) ?? existing?.status ?? 'critical';
      newChecks.push({
        id: checkId, name: String(c.Name ?? `Service '${name}' check`), serviceId: id, status, output: existing?.output ?? '',
        ttlMs, deregisterAfterMs, expiry: undefined, criticalSinceMs: status === 'critical' ? existing?.criticalSinceMs ?? Date.now() : undefined,
        modifyIndex: existing?.modifyIndex ?? this.index + 1,
      });
    }
    const old = this.services.get(id);
    const same = old !== undefined && old.node === node && JSON.stringify(old.definition) === JSON.stringify(definition);
    if (same && !replaceChecks && newChecks.every(c => this.checks.get(c.id)?.status === c.status)) {
      // Unchanged: Consul's anti-entropy writes nothing, the index does not move; TTL clocks restart.
      for (const c of newChecks) this.armTtl(this.checks.get(c.id) as Check);
      return undefined;
    }
    if (replaceChecks || !old) for (const c of this.checksByService.get(id) ?? []) this.dropCheck(c);
    const next = this.index + 1;
    this.services.set(id, { node, nodeAddress, definition, modifyIndex: same ? old.modifyIndex : next, createIndex: old?.createIndex ?? next });
    let ids = this.idsByName.get(name);
    if (!ids) this.idsByName.set(name, (ids = new Set()));
    ids.add(id);
    for (const c of newChecks) {
      clearTimeout(this.checks.get(c.id)?.expiry);
      this.checks.set(c.id, c);
      let set = this.checksByService.get(id);
      if (!set) this.checksByService.set(id, (set = new Set()));
      set.add(c.id);
      this.armTtl(c);
    }
    this.bump(name);
    return undefined;
  }

  deregister(id: string): void {
    const record = this.services.get(id);
    if (!record) return;
    const name = record.definition.Name as string;
    this.services.delete(id);
    this.idsByName.get(name)?.delete(id);
    for (const c of [...(this.checksByService.get(id) ?? [])]) this.dropCheck(c);
    this.checksByService.delete(id);
    this.bump(name);
  }

  private dropCheck(id: string): void {
    const check = this.checks.get(id);
    if (!check) return;
    clearTimeout(check.expiry);
    this.checks.delete(id);
    this.checksByService.get(check.serviceId)?.delete(id);
  }

  /** (Re)starts a TTL check's clock: critical when not updated within TTL. */
  private armTtl(check: Check): void {
    if (check.ttlMs === undefined) return;
    clearTimeout(check.expiry);
    check.expiry = setTimeout(() => {
      if (this.checks.get(check.id) === check) this.setStatus(check, 'critical', `TTL expired (last output: ${check.output})`);
    }, check.ttlMs);
    check.expiry.unref();
  }

  /** A check update; the index moves only when status or output changed (an identical pass wakes no blocking query). */
  setStatus(check: Check, status: CheckStatus, output: string): void {
    const changed = check.status !== status || check.output !== output;
    check.output = output;
    if (check.status !== status) check.criticalSinceMs = status === 'critical' ? Date.now() : undefined;
    check.status = status;
    if (!output.startsWith('TTL expired')) this.armTtl(check);
    if (!changed) return;
    const service = this.services.get(check.serviceId);
    check.modifyIndex = this.index + 1;
    if (service) this.bump(service.definition.Name as string);
  }

  /** Consul's reaper: services whose check stayed critical past `DeregisterCriticalServiceAfter` (at least the floor) go. */
  reap(nowMs = Date.now()): void {
    for (const check of [...this.checks.values()]) {
      if (check.deregisterAfterMs === undefined || check.status !== 'critical' || check.criticalSinceMs === undefined) continue;
      if (nowMs - check.criticalSinceMs >= Math.max(this.reapFloorMs, check.deregisterAfterMs)) this.deregister(check.serviceId);
    }
  }

  /**
   * The entries of `GET /v1/health/service/<service>`: every tag required, only all-passing
   * ones with `passing`; `visible` false drops them all as ACL filtering (reported in `filtered`).
   */
  health(service: string, datacenter: string, tags: readonly string[], passing: boolean, visible: boolean): { entries: object[]; filtered: boolean } {
    let filtered = false;
    const entries: object[] = [];
    const records = [...(this.idsByName.get(service) ?? [])].map(id => this.services.get(id) as ServiceRecord)
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : String(a.definition.ID) < String(b.definition.ID) ? -1 : 1));
    for (const r of records) {
      const d = r.definition;
      if (!tags.every(t => (d.Tags as string[]).includes(t))) continue;
      const checks = [...(this.checksByService.get(d.ID as string) ?? [])].map(id => this.checks.get(id) as Check);
      if (passing && !checks.every(c => c.status === 'passing')) continue;
      if (!visible) {
        filtered = true;
        continue;
      }
      entries.push({
        Node: {
          ID: '', Node: r.node, Address: r.nodeAddress, Datacenter: datacenter, TaggedAddresses: { lan: r.nodeAddress, wan: r.nodeAddress },
          Meta: {}, CreateIndex: this.nodeIndex, ModifyIndex: this.nodeIndex,
        },
        Service: {
          ID: d.ID, Service: d.Name, Tags: d.Tags, Address: d.Address ?? '', Meta: d.Meta, Port: d.Port ?? 0, Weights: d.Weights,
          EnableTagOverride: false, CreateIndex: r.createIndex, ModifyIndex: r.modifyIndex,
        },
        Checks: [
          { Node: r.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', Type: '' },
          ...checks.map(c => ({
            Node: r.node, CheckID: c.id, Name: c.name, Status: c.status, Output: c.output, ServiceID: d.ID, ServiceName: d.Name, ServiceTags: d.Tags,
            Type: c.ttlMs === undefined ? '' : 'ttl', CreateIndex: c.modifyIndex, ModifyIndex: c.modifyIndex,
          })),
        ],
      });
    }
    return { entries, filtered };
  }
}
