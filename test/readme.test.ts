/**
 * Every ```ts block of the README is type-checked against the real package (through
 * the `grpc-etcd-lb` path alias of tsconfig.json), so the docs cannot rot. Names a
 * snippet takes from the reader's own code (EchoClient, handlers, log...) are declared
 * in a prelude; everything from this package and grpc-js must be real.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { parseLoadBalancingConfig } from '../src/common/grpc-experimental';
import { registerBalancers } from '../src/balancer/policies/register-balancers';

const ROOT = join(__dirname, '..');

const PRELUDE = `
declare const EchoService: import('@grpc/grpc-js').ServiceDefinition;
declare const handlers: import('@grpc/grpc-js').UntypedServiceImplementation;
declare const EchoClient: import('@grpc/grpc-js').ServiceClientConstructor;
declare const log: { info(...args: unknown[]): void; warn(...args: unknown[]): void };
declare const metrics: { retries: { inc(labels: object): void } };
export {};
`;

function snippets(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map(m => m[1]);
}

/**
 * Imports first, then the prelude, then the snippet's body at the top level of a
 * CommonJS module (tsconfig's "module": "commonjs"), as in a default project: a
 * top-level `await` fails to compile here, so snippets use a form that works in
 * CommonJS and ESM alike.
 */
function wrap(code: string): string {
  const lines = code.split('\n');
  const imports = lines.filter(l => l.startsWith('import '));
  const body = lines.filter(l => !l.startsWith('import '));
  return `${imports.join('\n')}\n${PRELUDE}\n${body.join('\n')}\n`;
}

/** Balanced `[...]` starting at `open` (brackets inside strings are not expected in configs). */
function bracketed(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '[') depth++;
    else if (text[i] === ']' && --depth === 0) return text.slice(open, i + 1);
  }
  throw new Error(`unbalanced loadBalancingConfig at ${text.slice(open, open + 60)}`);
}

/**
 * Every `loadBalancingConfig` list in any code block, as written (JSON, jsonc or a
 * JS object literal: all are JavaScript, comments included).
 */
function loadBalancingConfigs(markdown: string): { text: string; value: Record<string, object>[] }[] {
  const found: { text: string; value: Record<string, object>[] }[] = [];
  for (const block of markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    for (const key of block[1].matchAll(/"?loadBalancingConfig"?\s*:\s*\[/g)) {
      const text = bracketed(block[1], key.index + key[0].length - 1);
      found.push({ text, value: new Function(`return ${text};`)() as Record<string, object>[] });
    }
  }
  return found;
}

describe('README code examples', function () {
  this.timeout(60_000);

  it('type-check against the package (strict)', () => {
    const blocks = snippets(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).to.be.at.least(3);
    const dir = mkdtempSync(join(ROOT, 'test', '.readme-'));
    try {
      const files = blocks.map((code, i) => {
        const file = join(dir, `snippet-${i}.ts`);
        writeFileSync(file, wrap(code));
        return file;
      });
      const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: d => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
      });
      const options = { ...config!.options, noEmit: true, noUnusedLocals: false };
      const program = ts.createProgram(files, options);
      const diagnostics = ts.getPreEmitDiagnostics(program).filter(d => d.file && files.includes(d.file.fileName));
      const messages = diagnostics.map(d => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${d.file!.fileName.slice(dir.length + 1)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      expect(messages).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every service config parses with grpc-js 1.14 into the policy it names (no silent pick_first)', () => {
    registerBalancers();
    const configs = loadBalancingConfigs(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(configs.length).to.be.at.least(8);
    for (const { text, value } of configs) {
      const first = value[0];
      const name = Object.keys(first)[0];
      // parseLoadBalancingConfig throws with grpc-js's reason, where the channel would only fall back.
      const parsed = parseLoadBalancingConfig(first);
      expect(parsed.getLoadBalancerName(), text).to.equal(name);
      // Ours, or wrapping ours — except grpc-js's weighted_round_robin, shown with the ORCA server helper.
      if (name !== 'weighted_round_robin') expect(JSON.stringify(parsed.toJsonObject()), text).to.match(/"etcd_[a-z_]+"/);
    }
  });
});
