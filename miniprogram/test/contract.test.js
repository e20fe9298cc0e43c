'use strict';
// The module against bff's generated contract, `GET /openapi.json` of a running dev server:
//  - every schema a mini-program route uses has an interface of the same name in
//    bff-client.d.ts, field for field (names, required/optional, types, enums);
//  - every /api/v1 route is called by a client method, and the client calls no other (but those
//    of AHEAD_OF_SERVER, written before bff serves them: checked like the rest once it does);
//  - what the client sends fits: body fields, Authorization where the route is authenticated,
//    the device headers the route declares (a body-less route's EmptyRequest: none, or `{}`).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ts = requireDev('typescript');
const { createBffClient } = require('../bff-client');
const { createFakeWx } = require('./support/fake-wx');
const { startDevServer } = require('./support/devserver');

function requireDev(name) {
  try {
    return require(name);
  } catch (e) {
    throw new Error(`${name} is missing: run \`npm ci\` in miniprogram/ (make test-js does) (${e.message})`);
  }
}

const DTS = path.join(__dirname, '..', 'bff-client.d.ts');
/**
 * Routes the client calls before this bff serves them, and fields it declares before bff's
 * schema has them: excused while absent from /openapi.json, checked like the rest once there.
 * None today: bff serves every route and field the client knows.
 */
const AHEAD_OF_SERVER = [];
/** @type {Record<string, string[]>} */
const AHEAD_FIELDS = {};
// The gateway or the IdP calls these, never the mini program: the forward-auth check and the
// IDaaS tenant's WebHook (docs/gateway.md).
const GATEWAY_ONLY = ['GET /auth', 'POST /idp/events'];
const SLOW = { timeout: 60000 };

/** The interfaces of bff-client.d.ts: name → { field → { optional, type } }. */
function declaredInterfaces() {
  const source = ts.createSourceFile(DTS, fs.readFileSync(DTS, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = {};
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    const fields = {};
    for (const member of node.members) {
      if (!ts.isPropertySignature(member)) continue;
      fields[member.name.getText(source)] = {
        optional: Boolean(member.questionToken),
        type: typeOf(member.type, source),
      };
    }
    out[node.name.text] = fields;
  });
  return out;
}

/** A TypeScript type, normalised to compare with a JSON schema. */
function typeOf(node, source) {
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      return 'string';
    case ts.SyntaxKind.NumberKeyword:
      return 'number';
    case ts.SyntaxKind.BooleanKeyword:
      return 'boolean';
    case ts.SyntaxKind.TypeLiteral:
      return 'object';
    case ts.SyntaxKind.ArrayType:
      return `${typeOf(node.elementType, source)}[]`;
    case ts.SyntaxKind.TypeReference:
      return `ref:${node.typeName.getText(source)}`;
    case ts.SyntaxKind.UnionType: {
      const isNull = (t) => ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword;
      const rest = node.types.filter((t) => !isNull(t));
      const nullable = rest.length < node.types.length ? '|null' : '';
      if (rest.length === 1) return typeOf(rest[0], source) + nullable;
      if (rest.every((t) => ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal)))
        return `enum:${rest
          .map((t) => t.literal.text)
          .sort()
          .join('|')}${nullable}`;
      return `unsupported:${node.getText(source)}`;
    }
    default:
      return `unsupported:${node.getText(source)}`;
  }
}

/** A JSON schema property, normalised the same way (OpenAPI 3.0's `nullable` as `|null`). */
function schemaTypeOf(prop) {
  const nullable = prop.nullable ? '|null' : '';
  if (prop.$ref) return `ref:${prop.$ref.split('/').pop()}`;
  if (prop.enum) return `enum:${prop.enum.filter((v) => v !== null).sort().join('|')}${nullable}`;
  if (prop.type === 'integer' || prop.type === 'number') return `number${nullable}`;
  if (prop.type === 'array') return `${schemaTypeOf(prop.items)}[]${nullable}`;
  return prop.type + nullable;
}

/** `METHOD /path` with every `{param}` as `{}`: a route, whatever its parameters are named. */
function routeKey(key) {
  return key.replace(/\{[^}]*\}/g, '{}');
}

/** Whether a call (`METHOD /path`) went to a route (`METHOD /path/{param}`): segment by segment. */
function callMatches(route, call) {
  const [method, template] = route.split(' ');
  const [calledMethod, calledPath] = call.split(' ');
  const want = template.split('/');
  const got = calledPath.split('/');
  return (
    method === calledMethod &&
    want.length === got.length &&
    want.every((part, i) => (/^\{[^}]*\}$/.test(part) ? got[i] !== '' : part === got[i]))
  );
}

/** The route among `routes` a call went to, else the call's own `METHOD /path`. */
function routeOf(routes, call) {
  const key = `${call.method} ${call.path}`;
  return routes.find((route) => callMatches(route, key)) || key;
}

/** The mini-program operations: "METHOD /path" → operation. */
function apiOperations(doc) {
  const ops = {};
  for (const [p, methods] of Object.entries(doc.paths)) {
    if (!p.startsWith('/api/v1/')) continue;
    for (const [method, op] of Object.entries(methods)) {
      const key = `${method.toUpperCase()} ${p.slice('/api/v1'.length)}`;
      if (!GATEWAY_ONLY.includes(key)) ops[key] = op;
    }
  }
  return ops;
}

/** Schema names an operation uses (request, answers, errors), with the schemas they reference. */
function usedSchemas(doc, ops) {
  const names = new Set();
  const visit = (schema) => {
    if (!schema) return;
    if (schema.$ref) {
      const name = schema.$ref.split('/').pop();
      if (names.has(name)) return;
      names.add(name);
      visit(doc.components.schemas[name]);
      return;
    }
    for (const prop of Object.values(schema.properties || {})) visit(prop);
    if (schema.items) visit(schema.items);
    // An error answer is ErrorResponse narrowed to that operation's codes (allOf).
    for (const part of [...(schema.allOf || []), ...(schema.anyOf || []), ...(schema.oneOf || [])])
      visit(part);
  };
  for (const op of Object.values(ops)) {
    visit(op.requestBody && op.requestBody.content['application/json'].schema);
    for (const answer of Object.values(op.responses))
      visit(answer.content && answer.content['application/json'].schema);
  }
  return [...names].sort();
}

/** Every client method called once against the fake bff: the requests it sends. */
async function everyClientCall() {
  const fake = createFakeWx();
  const bff = createBffClient({ baseUrl: 'http://127.0.0.1:1', wx: fake.wx });
  const captcha = { token: 't', point_json: '{"x":1.0,"y":5.0}' };
  await bff.login();
  await bff.loginWithPhone('phone-code');
  await bff.bindWithPassword('alice', 'secret');
  await bff.bindWithWechatPhone('phone-code');
  await bff.bindWithCode({ mobile: '+86-13800000000' }, '123456');
  await bff.bindWithCode({ email: 'a@example.com' }, '123456');
  await bff.registerWithWechatPhone('phone-code');
  await bff.registerWithCode({ mobile: '+86-13800000000' }, '123456');
  await bff.getCaptcha();
  await bff.sendCode({ channel: 'sms', to: '+86-13800000000', purpose: 'bind', captcha });
  await bff.refresh();
  await bff.sessionStatus();
  const sessions = await bff.listSessions();
  await bff.endSession(sessions[0].id);
  fake.step = 'MFA_AUTH';
  await bff.mfaInfo();
  await bff.sendMfaCode(captcha);
  await bff.verifyMfa(fake.mfaCode);
  fake.step = 'PASSWORD_WARN';
  await bff.skipPasswordChange();
  fake.step = 'PASSWORD_EXPIRED';
  await bff.changePassword(fake.password, 'new-secret-2');
  await bff.logout();
  await bff.unbindWechat(); // last: it ends every handle
  return fake.calls;
}

describe('bff-client against /openapi.json', () => {
  let server;
  let doc;
  before(async () => {
    server = await startDevServer();
    const res = await fetch(`${server.baseUrl}/openapi.json`);
    assert.equal(res.status, 200);
    doc = await res.json();
  }, SLOW);
  after(() => server && server.stop(), SLOW);

  test('the wire types of bff-client.d.ts are the schemas, field for field', () => {
    const declared = declaredInterfaces();
    const names = usedSchemas(doc, apiOperations(doc));
    assert.ok(names.includes('LoginResponse') && names.includes('ErrorResponse'), names.join());
    for (const name of names) {
      const schema = doc.components.schemas[name];
      const props = schema.properties || {};
      if (Object.keys(props).length === 0) continue; // EmptyRequest: nothing to declare
      assert.ok(
        declared[name],
        `bff-client.d.ts has no interface ${name} (schema: ${JSON.stringify(props)})`,
      );
      const required = new Set(schema.required || []);
      const ahead = (AHEAD_FIELDS[name] || []).filter((field) => !(field in props));
      const fields = Object.keys(declared[name]).filter((field) => !ahead.includes(field));
      assert.deepEqual(fields.sort(), Object.keys(props).sort(), `${name}: fields`);
      for (const [field, prop] of Object.entries(props)) {
        const mine = declared[name][field];
        assert.equal(
          mine.optional,
          !required.has(field),
          `${name}.${field}: required is ${required.has(field)}`,
        );
        assert.equal(mine.type, schemaTypeOf(prop), `${name}.${field}: type`);
      }
    }
  });

  test('a client method for every /api/v1 route, and no other route', async () => {
    const served = Object.keys(apiOperations(doc));
    const ahead = AHEAD_OF_SERVER.filter((key) => !served.some((op) => routeKey(op) === key));
    const called = new Set((await everyClientCall()).map((c) => routeKey(routeOf([...served, ...ahead], c))));
    assert.deepEqual([...called].filter((key) => !ahead.includes(key)).sort(), served.map(routeKey).sort());
  });

  test('what the client sends fits each route: body fields, auth, device headers', async () => {
    const ops = apiOperations(doc);
    for (const call of await everyClientCall()) {
      const op = ops[routeOf(Object.keys(ops), call)];
      const where = `${call.method} ${call.path}`;
      if (!op) continue; // AHEAD_OF_SERVER (the test above fails on any other)
      const ref = op.requestBody && op.requestBody.content['application/json'].schema.$ref;
      const schema = ref && doc.components.schemas[ref.split('/').pop()];
      if (schema && Object.keys(schema.properties).length > 0) {
        const sent = Object.keys(call.data || {});
        for (const field of sent) assert.ok(field in schema.properties, `${where}: unknown field ${field}`);
        for (const field of schema.required || [])
          assert.ok(sent.includes(field), `${where}: ${field} missing`);
        assert.equal(call.header['Content-Type'], 'application/json', where);
      } else if (schema) {
        // EmptyRequest: "accepts none (or `{}`)".
        const none = call.data === undefined || (Object.keys(call.data).length === 0 && !Array.isArray(call.data));
        assert.ok(none, `${where} takes no body`);
      } else {
        assert.equal(call.data, undefined, `${where} takes no body`);
      }
      assert.equal(Boolean(call.header.Authorization), Boolean(op.security), `${where}: Authorization`);
      for (const param of op.parameters || []) {
        if (param.in === 'header' && param.required)
          assert.ok(call.header[param.name], `${where}: ${param.name}`);
      }
    }
  });
});
