/**
 * Every code block of README.md and docs/*.md is checked, so the docs cannot rot:
 * - ```ts: type-checked (strict, one program for all blocks) against the real package
 *   through the `grpc-etcd-lb` path alias of tsconfig.json. README blocks get no prelude:
 *   they must compile as pasted into a new app. docs/ blocks may use a few names from the
 *   reader's own code (EchoClient, log...), declared in a prelude.
 * - ```json: parsed with JSON.parse; ```jsonc: each top-level value parsed after dropping
 *   `//` comment lines.
 * - every `loadBalancingConfig` list in any block is parsed by grpc-js 1.14 into the policy
 *   it names (a config grpc-js cannot parse would silently become pick_first).
 * - ```sh: every `npm run X` names a script of package.json, and `npm test` is `npm test`.
 *   Other shell content is not run.
 * - ```text and ```mermaid: not checked (sample output, key/value layouts, diagrams).
 *   Every block must carry one of these languages.
 * - Relative links point at files that exist (docs/backends.md and docs/api/ are written
 *   elsewhere), and `#anchors` at headings of the target file.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';
import { parseLoadBalancingConfig } from '../src/common/grpc-experimental';
import { registerBalancers } from '../src/balancer/policies/register-balancers';

const ROOT = join(__dirname, '..');
const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)];
const LANGUAGES = new Set(['ts', 'json', 'jsonc', 'sh', 'text', 'mermaid']);
/** Linked from these docs, written by others (backends.md) or generated (api/). */
const LINKED_ELSEWHERE = new Set(['docs/backends.md', 'docs/api']);

const PRELUDE = `
declare const EchoService: import('@grpc/grpc-js').ServiceDefinition;
declare const handlers: import('@grpc/grpc-js').UntypedServiceImplementation;
declare const EchoClient: import('@grpc/grpc-js').ServiceClientConstructor;
declare const log: { info(...args: unknown[]): void; warn(...args: unknown[]): void };
declare const metrics: { retries: { inc(labels: object): void } };
`;

interface Block { file: string; line: number; lang: string; code: string }

function blocks(file: string): Block[] {
  const found: Block[] = [];
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  let open: { line: number; lang: string; indent: string; body: string[] } | undefined;
  lines.forEach((text, i) => {
    const fence = /^(\s*)```(\S*)\s*$/.exec(text);
    if (!open && fence) open = { line: i + 1, lang: fence[2], indent: fence[1], body: [] };
    else if (open && fence) {
      found.push({ file, line: open.line, lang: open.lang, code: open.body.join('\n') });
      open = undefined;
    } else if (open) open.body.push(text.startsWith(open.indent) ? text.slice(open.indent.length) : text);
  });
  if (open) throw new Error(`${file}:${open.line}: unclosed code block`);
  return found;
}

const ALL = FILES.flatMap(blocks);
const where = (b: Block): string => `${b.file}:${b.line}`;

/**
 * Imports first, then the prelude (docs/ only), then the body at the top level of a
 * CommonJS module (tsconfig's "module": "commonjs"), as in a default project: a
 * top-level `await` fails to compile here, so snippets use a form that works in
 * CommonJS and ESM alike.
 */
function wrap(block: Block): string {
  const lines = block.code.split('\n');
  const imports = lines.filter(l => l.startsWith('import '));
  const body = lines.filter(l => !l.startsWith('import '));
  const prelude = block.file === 'README.md' ? '' : PRELUDE;
  return `${imports.join('\n')}\n${prelude}\nexport {};\n${body.join('\n')}\n`;
}

/** Top-level `{...}` / `[...]` values of a jsonc block (strings respected). */
function jsoncValues(code: string): string[] {
  const text = code.split('\n').filter(l => !l.trim().startsWith('//')).join('\n');
  const values: string[] = [];
  let depth = 0, start = -1, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') { if (depth++ === 0) start = i; }
    else if (c === '}' || c === ']') { if (--depth === 0) values.push(text.slice(start, i + 1)); }
  }
  expect(depth, 'unbalanced jsonc').to.equal(0);
  return values;
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

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map(m =>
    m[1].toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')));
}

describe('docs: README.md and docs/*.md code blocks', function () {
  this.timeout(60_000);

  it('every block names a checked language', () => {
    for (const b of ALL) expect(LANGUAGES.has(b.lang), `${where(b)}: language '${b.lang}'`).to.equal(true);
    expect(ALL.filter(b => b.file === 'README.md' && b.lang === 'ts').length).to.be.at.least(2);
  });

  it('TypeScript blocks type-check against the package (strict)', () => {
    const tsBlocks = ALL.filter(b => b.lang === 'ts');
    expect(tsBlocks.length).to.be.at.least(8);
    const dir = mkdtempSync(join(ROOT, 'test', '.readme-'));
    try {
      const files = tsBlocks.map((b, i) => {
        const file = join(dir, `snippet-${i}.ts`);
        writeFileSync(file, wrap(b));
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
        const block = tsBlocks[files.indexOf(d.file!.fileName)];
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${where(block)} (snippet line ${line + 1}): ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      expect(messages).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('JSON blocks parse (jsonc: each value, comment lines dropped)', () => {
    for (const b of ALL.filter(x => x.lang === 'json')) expect(() => JSON.parse(b.code), where(b)).not.to.throw();
    const jsonc = ALL.filter(x => x.lang === 'jsonc');
    expect(jsonc.length).to.be.at.least(3);
    for (const b of jsonc) {
      const values = jsoncValues(b.code);
      expect(values.length, where(b)).to.be.at.least(1);
      for (const v of values) expect(() => JSON.parse(v), `${where(b)}: ${v}`).not.to.throw();
    }
  });

  it('every service config parses with grpc-js 1.14 into the policy it names (no silent pick_first)', () => {
    registerBalancers();
    let count = 0;
    for (const b of ALL) {
      for (const key of b.code.matchAll(/"?loadBalancingConfig"?\s*:\s*\[/g)) {
        const text = bracketed(b.code, key.index + key[0].length - 1);
        // JSON, jsonc or a JS object literal: all are JavaScript, comments included.
        const value = new Function(`return ${text};`)() as Record<string, object>[];
        const first = value[0];
        const name = Object.keys(first)[0];
        // parseLoadBalancingConfig throws with grpc-js's reason, where the channel would only fall back.
        const parsed = parseLoadBalancingConfig(first);
        expect(parsed.getLoadBalancerName(), `${where(b)}: ${text}`).to.equal(name);
        // Ours, or wrapping ours — except grpc-js's weighted_round_robin, shown with the ORCA server helper.
        if (name !== 'weighted_round_robin') expect(JSON.stringify(parsed.toJsonObject()), text).to.match(/"etcd_[a-z_]+"/);
        count++;
      }
    }
    expect(count).to.be.at.least(8);
  });

  it('shell blocks name only existing npm scripts; the README shows `npm test` and `npm run demo`', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const b of ALL.filter(x => x.lang === 'sh')) {
      for (const m of b.code.matchAll(/npm run ([\w:-]+)/g)) expect(scripts, `${where(b)}: npm run ${m[1]}`).to.have.property(m[1]);
    }
    const readmeShell = ALL.filter(b => b.file === 'README.md' && b.lang === 'sh').map(b => b.code).join('\n');
    expect(readmeShell).to.match(/^npm test\b/m);
    expect(readmeShell).to.include('npm run demo');
  });

  it('relative links point at existing files and headings', () => {
    const broken: string[] = [];
    for (const file of FILES) {
      const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1];
        if (/^[a-z]+:/.test(link)) continue;
        const [path, anchor] = link.split('#');
        const target = path === '' ? join(ROOT, file) : join(ROOT, dirname(file), path);
        const rel = relative(ROOT, target).replace(/\/$/, '');
        if (LINKED_ELSEWHERE.has(rel)) continue;
        if (!existsSync(target)) broken.push(`${file}: ${link} (no such file)`);
        else if (anchor && target.endsWith('.md') && !anchors(target).has(anchor)) broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    expect(broken).to.deep.equal([]);
  });
});
