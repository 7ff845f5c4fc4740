/** `@opentelemetry/api`, an optional peer: loaded on first use, never at import; absent means no metrics. */
import { type OtelApiModule } from './otel-types';

let loaded: OtelApiModule | null | undefined;

/** The API module, or null when it is not installed (or fails to load). */
export function otelApi(): OtelApiModule | null {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@opentelemetry/api') as OtelApiModule;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
