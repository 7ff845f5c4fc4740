/** The demo's terminal output: a live table on a TTY, one line per second otherwise. */

export interface ReplicaRow {
  name: string;
  weight: number;
  state: string;
  /** Share of calls served in the last interval, 0..1. */
  share: number;
  total: number;
  inFlight: number;
  p99Ms: number | undefined;
  /** Attempts on this replica that failed and were retried elsewhere. */
  retried: number;
}

export interface Frame {
  elapsedS: number;
  durationS: number;
  callsPerS: number;
  calls: number;
  failed: number;
  rows: ReplicaRow[];
}

const RESET = '\x1b[0m';
const BOLD = '\x1b[1m';
const DIM = '\x1b[2m';
const YELLOW = '\x1b[33m';
const GREEN = '\x1b[32m';
const RED = '\x1b[31m';

export class DemoOutput {
  private linesDrawn = 0;
  private readonly banners: string[] = [];

  constructor(private readonly tty: boolean, private readonly write: (s: string) => void = s => process.stdout.write(s)) {}

  banner(elapsedS: number, text: string): void {
    const line = `[${elapsedS.toFixed(1).padStart(5)}s] ▶ ${text}`;
    if (this.tty) {
      this.banners.push(line);
      if (this.banners.length > 8) this.banners.shift();
    } else {
      this.write(`${line}\n`);
    }
  }

  frame(f: Frame): void {
    if (!this.tty) {
      const shares = f.rows.map(r => `${r.name}=${(r.share * 100).toFixed(0)}%${r.state === 'up' ? '' : `(${r.state})`}`).join(' ');
      this.write(`t=${f.elapsedS.toFixed(0)}s calls/s=${f.callsPerS} calls=${f.calls} failed=${f.failed} ${shares}\n`);
      return;
    }
    const out: string[] = [];
    out.push(`${BOLD}grpc-etcd-lb demo${RESET}  ${f.elapsedS.toFixed(0)}/${f.durationS}s   ${f.callsPerS} calls/s   calls ${f.calls}   ` +
      `failed ${f.failed === 0 ? GREEN : RED}${f.failed}${RESET}`);
    out.push('');
    out.push(`${DIM}${pad('replica', 9)}${pad('weight', 8)}${pad('state', 12)}${pad('share', 22)}${pad('calls', 9)}${pad('in-flight', 11)}${pad('p99 ms', 9)}retried${RESET}`);
    for (const r of f.rows) {
      const bar = '█'.repeat(Math.round(r.share * 15)).padEnd(15, ' ');
      const stateColour = r.state === 'up' ? GREEN : r.state === 'new' ? YELLOW : RED;
      out.push(
        pad(r.name, 9) + pad(String(r.weight), 8) + stateColour + pad(r.state, 12) + RESET +
        pad(`${bar} ${(r.share * 100).toFixed(0).padStart(3)}%`, 22) + pad(String(r.total), 9) + pad(String(r.inFlight), 11) +
        pad(r.p99Ms === undefined ? '-' : r.p99Ms.toFixed(1), 9) + String(r.retried),
      );
    }
    out.push('');
    for (const b of this.banners) out.push(`${YELLOW}${b}${RESET}`);
    const text = out.map(l => `${l}\x1b[K`).join('\n') + '\n';
    this.write((this.linesDrawn > 0 ? `\x1b[${this.linesDrawn}F` : '') + text + '\x1b[J');
    this.linesDrawn = out.length;
  }

  line(text: string): void {
    this.write(`${text}\n`);
    this.linesDrawn = 0;
  }
}

function pad(s: string, width: number): string {
  return s.padEnd(width, ' ');
}

/** `1 call`, `2 calls`: a count with its noun in the right number. */
export function count(n: number, noun: string): string {
  return `${n} ${n === 1 ? noun : `${noun}s`}`;
}
