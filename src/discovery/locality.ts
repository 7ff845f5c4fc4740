/** The process's locality, for zone-aware routing. Process-wide: set once, a different value later throws. */

export interface Locality {
  /** The zone this process runs in (e.g. `eu-west-1a`). Compared as an exact string with endpoints' `metadata.zone`. */
  readonly zone: string;
}

let current: Locality | undefined;

/** Validates `register()`'s `locality` option; throws a TypeError naming what is wrong. */
export function validateLocality(value: unknown, where: string): Locality {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${where}: locality must be an object like { zone: 'eu-west-1a' }, got ${JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'zone') throw new TypeError(`${where}: unknown locality field '${key}' (known: zone)`);
  }
  const zone = record.zone;
  if (typeof zone !== 'string' || zone.trim() === '' || zone !== zone.trim() || zone.length > 128) {
    throw new TypeError(`${where}: locality.zone must be a non-empty string without surrounding spaces (at most 128 characters), got ${JSON.stringify(zone)}`);
  }
  return Object.freeze({ zone });
}

/** Called by `register()` after validation. */
export function setLocality(locality: Locality): void {
  current = locality;
}

/** The process's locality, or undefined when `register()` was given none (zone-aware routing is then off). */
export function getLocality(): Locality | undefined {
  return current;
}

/** For tests only: forget the locality. */
export function resetLocalityForTests(): void {
  current = undefined;
}
