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

/** Moves imports to the top and the rest into an async function (snippets use top-level await). */
function wrap(code: string): string {
  const lines = code.split('\n');
  const imports = lines.filter(l => l.startsWith('import '));
  const body = lines.filter(l => !l.startsWith('import '));
  return `${imports.join('\n')}\n${PRELUDE}\nexport async function snippet(): Promise<void> {\n${body.join('\n')}\n}\n`;
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
});
