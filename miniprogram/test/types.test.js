'use strict';
// The shipped module (bff-client.js and its parts in bff-client/), statically:
//  - `tsc --noEmit` (tsconfig.json): every file type-checked (checkJs, strict) against the
//    declarations and Tencent's miniprogram-api-typings (every use of `wx`), plus
//    test/types/wx-compat.ts (Tencent's wx.request / wx.login / storage fit the options);
//  - ES2017 syntax only (mini program base libraries without "Enhanced compile"): no `?.`, `??`,
//    object spread/rest, class fields, optional catch binding, ...; ES2017 library only (the
//    `lib` of tsconfig.json catches Promise.prototype.finally and friends);
//  - no dependencies: the only require() calls are of the module's own files (relative, `.js`
//    named, no cycle), none in package.json, and the package ships every one of those files;
//  - small pieces: no file longer than 300 lines, no function longer than 50.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const MODULE = path.join(ROOT, 'bff-client.js');
const PARTS = path.join(ROOT, 'bff-client');
/** Every file of the module: the entry, then its parts. */
const MODULES = [
  MODULE,
  ...fs
    .readdirSync(PARTS)
    .filter((name) => name.endsWith('.js'))
    .sort()
    .map((name) => path.join(PARTS, name)),
];
const rel = (file) => path.relative(ROOT, file);

/** The parsed source of `file` (typescript's AST). */
function parse(ts, file) {
  const text = fs.readFileSync(file, 'utf8');
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
}

/** The require() calls of `source`: { text, target } (target: the string literal, or null). */
function requiresOf(ts, source) {
  const found = [];
  const visit = (node) => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
      const arg = node.arguments.length === 1 ? node.arguments[0] : null;
      found.push({ text: node.getText(source), target: arg && ts.isStringLiteral(arg) ? arg.text : null });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function tsPackage() {
  try {
    return require.resolve('typescript/package.json');
  } catch {
    throw new Error('typescript is missing: run `npm ci` in miniprogram/ (make test-js does)');
  }
}

test(
  'tsc --noEmit: the module against its declarations and miniprogram-api-typings',
  { timeout: 120000 },
  () => {
    const tsc = path.join(path.dirname(tsPackage()), 'bin', 'tsc');
    const run = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(ROOT, 'tsconfig.json')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 110000,
    });
    assert.equal(run.status, 0, `tsc failed:\n${run.stdout}\n${run.stderr}`);
    const config = fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8');
    assert.match(config, /"checkJs": true/);
    assert.match(config, /"types": \["miniprogram-api-typings"\]/);
  },
);

test('ES2017 syntax only', () => {
  tsPackage();
  const ts = require('typescript');
  assert.ok(MODULES.length > 1, 'the parts are found');
  const found = [];
  for (const file of MODULES) found.push(...es2017Violations(ts, file));
  assert.deepEqual(found, []);
});

/** What in `file` is later than ES2017: ["<file> line N: what"]. */
function es2017Violations(ts, file) {
  const source = parse(ts, file);
  const found = [];
  const flag = (node, what) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    found.push(`${rel(file)} line ${line + 1}: ${what}`);
  };
  const K = ts.SyntaxKind;
  const visit = (node) => {
    if (node.questionDotToken) flag(node, 'optional chaining ?. (ES2020)');
    if (ts.isBinaryExpression(node)) {
      const op = node.operatorToken.kind;
      if (op === K.QuestionQuestionToken) flag(node, '?? (ES2020)');
      if (
        [K.QuestionQuestionEqualsToken, K.BarBarEqualsToken, K.AmpersandAmpersandEqualsToken].includes(op)
      ) {
        flag(node, 'logical assignment (ES2021)');
      }
    }
    if (ts.isSpreadAssignment(node)) flag(node, 'object spread (ES2018)');
    if (ts.isBindingElement(node) && node.dotDotDotToken && ts.isObjectBindingPattern(node.parent)) {
      flag(node, 'object rest (ES2018)');
    }
    if (ts.isPropertyDeclaration(node)) flag(node, 'class field (ES2022)');
    if (ts.isPrivateIdentifier(node)) flag(node, '#private (ES2022)');
    if (ts.isCatchClause(node) && !node.variableDeclaration) flag(node, 'optional catch binding (ES2019)');
    if (ts.isForOfStatement(node) && node.awaitModifier) flag(node, 'for await (ES2018)');
    if (
      (ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isMethodDeclaration(node)) &&
      node.asteriskToken &&
      (node.modifiers || []).some((m) => m.kind === K.AsyncKeyword)
    ) {
      flag(node, 'async generator (ES2018)');
    }
    if (node.kind === K.BigIntLiteral) flag(node, 'BigInt (ES2020)');
    if (ts.isNumericLiteral(node) && node.getText(source).includes('_'))
      flag(node, 'numeric separator (ES2021)');
    if (ts.isRegularExpressionLiteral(node)) {
      const re = node.getText(source);
      const flags = re.slice(re.lastIndexOf('/') + 1);
      if (/[sd]/.test(flags)) flag(node, `regex flag ${flags} (ES2018+)`);
      if (/\(\?<[=!]|\(\?<[A-Za-z]|\\p\{/.test(re))
        flag(node, 'regex lookbehind / named group / \\p (ES2018)');
    }
    if (ts.isCallExpression(node) && node.expression.kind === K.ImportKeyword)
      flag(node, 'import() (ES2020)');
    if (ts.isMetaProperty(node)) flag(node, 'import.meta');
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** file → the module files it requires; throws when a require() is anything else. */
function requireGraph(ts) {
  const edges = new Map();
  const problems = [];
  for (const file of MODULES) {
    const targets = [];
    for (const { text, target } of requiresOf(ts, parse(ts, file))) {
      const resolved = target && /^\.\.?\//.test(target) ? path.resolve(path.dirname(file), target) : null;
      if (!resolved || !target.endsWith('.js') || !MODULES.includes(resolved)) {
        problems.push(`${rel(file)}: ${text} is not one of the module's own files`);
      } else {
        targets.push(resolved);
      }
    }
    edges.set(file, targets);
  }
  assert.deepEqual(problems, [], 'the module requires nothing but its own files');
  return edges;
}

test('no runtime dependencies; the package ships the module and its declarations', () => {
  tsPackage();
  const ts = require('typescript');
  // Every require() names one of the module's own files, relative and with `.js` (WeChat's
  // require and Node's then agree without any lookup); every part is reached from the entry;
  // no cycle between the parts.
  const edges = requireGraph(ts);
  const reached = new Set();
  const onPath = [];
  const walk = (file) => {
    assert.ok(!onPath.includes(file), `a require cycle: ${[...onPath, file].map(rel).join(' -> ')}`);
    if (reached.has(file)) return;
    reached.add(file);
    onPath.push(file);
    for (const next of edges.get(file)) walk(next);
    onPath.pop();
  };
  walk(MODULE);
  assert.deepEqual(MODULES.filter((f) => !reached.has(f)).map(rel), [], 'every part is required');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.main, 'bff-client.js');
  assert.equal(pkg.types, 'bff-client.d.ts');
  assert.deepEqual(pkg.files, ['bff-client.js', 'bff-client/', 'bff-client.d.ts']);
  const shipped = (file) =>
    pkg.files.some((f) => (f.endsWith('/') ? rel(file).startsWith(f) : rel(file) === f));
  assert.deepEqual(MODULES.filter((f) => !shipped(f)).map(rel), [], 'the package ships every file');
  for (const [name, version] of Object.entries(pkg.devDependencies)) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned to an exact version`);
  }
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  assert.deepEqual(lock.packages[''].devDependencies, pkg.devDependencies, 'package-lock.json is current');
  assert.equal(require('../bff-client').VERSION, pkg.version);
});

test('no file longer than 300 lines, no function longer than 50', () => {
  tsPackage();
  const ts = require('typescript');
  const long = [];
  for (const file of MODULES) {
    const source = parse(ts, file);
    const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line + 1;
    const lines = lineOf(source.getEnd());
    if (lines > 300) long.push(`${rel(file)}: ${lines} lines`);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && node.body) {
        const start = lineOf(node.getStart(source));
        const span = lineOf(node.getEnd()) - start + 1;
        const name = node.name ? node.name.getText(source) : '(anonymous)';
        if (span > 50) long.push(`${rel(file)} line ${start}: ${name}, ${span} lines`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  assert.deepEqual(long, []);
});

test('compiled to ES5 (what "Enhanced compile" does to it), the module still works', async () => {
  tsPackage();
  const ts = require('typescript');
  const os = require('node:os');
  const { createFakeWx } = require('./support/fake-wx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bff-client-es5-'));
  try {
    for (const file of MODULES) {
      const es5 = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        compilerOptions: { target: ts.ScriptTarget.ES5, module: ts.ModuleKind.CommonJS, lib: ['es2017'] },
      }).outputText;
      assert.doesNotMatch(es5, /^\s*class /m, `${rel(file)}: really ES5`);
      fs.mkdirSync(path.dirname(path.join(dir, rel(file))), { recursive: true });
      fs.writeFileSync(path.join(dir, rel(file)), es5);
    }
    const mod = require(path.join(dir, 'bff-client.js'));
    const fake = createFakeWx();
    const bff = mod.createBffClient({ baseUrl: 'https://bff.example.com', wx: fake.wx });
    assert.equal((await bff.login()).status, 'SUCCESS');
    fake.routes['POST /bind/username-password'] = () => fake.envelope(400, 'IDAAS.SDK.LOGIN.1005');
    const err = await bff.bindWithPassword('alice', 'wrong').catch((e) => e);
    // A compiled `class extends Error` loses its prototype unless the module restores it.
    assert.ok(err instanceof mod.BffError);
    assert.ok(err instanceof Error);
    assert.ok(err.is('LOGIN.1005'));
    assert.ok(mod.isCode(err, 'LOGIN.1005'));
    assert.equal(err.error_code, 'IDAAS.SDK.LOGIN.1005');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
