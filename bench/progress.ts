/**
 * Progress on stderr while the bench runs: on a terminal, one bar redrawn in
 * place (steps done / announced, current step, elapsed time); otherwise one
 * line per step, so logs stay readable. Never writes to stdout.
 */
import { type ProgressSink } from './scenario';

const BAR_WIDTH = 24;
const REDRAW_MS = 500;

export class Progress implements ProgressSink {
  private total = 0;
  private done = 0;
  private label = '';
  private scenario = '';
  private readonly startMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly live = stream.isTTY === true) {}

  /** Announces the total number of steps of the whole run. */
  begin(totalSteps: number): void {
    this.total = Math.max(1, totalSteps);
    if (this.live) {
      this.timer = setInterval(() => this.draw(), REDRAW_MS);
      this.timer.unref();
    }
  }

  /** The next scenario starts. */
  scenarioStarts(name: string): void {
    this.scenario = name;
  }

  step(label: string): void {
    if (this.ended) return;
    if (this.label !== '') this.done = Math.min(this.total, this.done + 1);
    this.label = label;
    if (this.live) this.draw();
    else this.stream.write(`[${this.percent().padStart(4)}] ${this.scenario}: ${label}\n`);
  }

  note(text: string): void {
    if (this.ended) return;
    if (this.live) this.stream.write(`\r\x1b[K${text}\n`);
    else this.stream.write(`${text}\n`);
    if (this.live) this.draw();
  }

  /** Clears the bar and stays quiet from then on (what follows an interrupt is noise); call once at the end. */
  end(): void {
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live) this.stream.write('\r\x1b[K');
  }

  private percent(): string {
    return `${Math.floor((100 * this.done) / this.total)}%`;
  }

  private draw(): void {
    const filled = Math.round((BAR_WIDTH * this.done) / this.total);
    const elapsedS = Math.round((Date.now() - this.startMs) / 1000);
    const clock = `${Math.floor(elapsedS / 60)}m${String(elapsedS % 60).padStart(2, '0')}s`;
    const where = this.scenario === '' ? 'starting' : `${this.scenario}: ${this.label}`;
    const text = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${this.percent().padStart(4)} ${clock} ${where}`;
    // A pseudo-terminal may report 0 columns: assume a common width then.
    const columns = this.stream.columns > 0 ? this.stream.columns : 100;
    this.stream.write(`\r\x1b[K${text.slice(0, Math.max(20, columns - 1))}`);
  }
}
