'use strict';
// One page-level flow inside Tencent's mini program test runtime (npm miniprogram-simulate:
// j-component renders the component, the official wcc compiles its WXML, `wx` is simulate's):
// test/fixtures/bff-signin signs in through bff-client.js created with only { baseUrl }.
//
// miniprogram-simulate is written for jest's jsdom environment; on plain Node it needs a DOM,
// so jsdom provides `window`, `document` and the DOM event classes (Node's own Event is not
// jsdom's). The only parts of simulate's `wx` replaced are the ones that would otherwise be
// stubs: wx.request (bridged to the real bff over node:http), wx.login (codes from the WeChat
// simulator) and the storage calls (simulate's keep nothing).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { startDevServer } = require('./support/devserver');
const { nodeRequest } = require('./support/node-request');

function requireDev(name) {
  try {
    return require(name);
  } catch (e) {
    throw new Error(`${name} is missing: run \`npm ci\` in miniprogram/ (make test-js does) (${e.message})`);
  }
}

const { JSDOM } = requireDev('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
global.window = dom.window;
global.document = dom.window.document;
for (const name of ['Event', 'CustomEvent', 'EventTarget', 'Node', 'HTMLElement', 'MutationObserver']) {
  global[name] = dom.window[name];
}
const simulate = requireDev('miniprogram-simulate'); // installs the global `wx`

const COMPONENT = path.join(__dirname, 'fixtures', 'bff-signin', 'index');
const SLOW = { timeout: 60000 };

/** Wait (bounded) until `probe()` is truthy; the component works asynchronously. */
async function until(probe, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let server;
const storage = new Map();

before(async () => {
  server = await startDevServer();
  const openid = `o_simulate_${process.pid}`;
  Object.assign(global.wx, {
    request: nodeRequest,
    login: ({ success, fail }) => {
      server.sim.wxCode(openid).then(
        (code) => success({ code, errMsg: 'login:ok' }),
        (e) => fail({ errMsg: e.message }),
      );
    },
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    removeStorageSync: (key) => storage.delete(key),
  });
}, SLOW);

after(() => server && server.stop(), SLOW);

test('a component signs in with WeChat, binds by password, signs out', SLOW, async () => {
  const id = simulate.load(COMPONENT, 'bff-signin');
  const comp = simulate.render(id, { baseUrl: server.baseUrl });
  comp.attach(document.createElement('parent-wrapper'));
  const text = (selector) => {
    const node = comp.querySelector(selector);
    return node ? node.dom.textContent.trim() : null;
  };
  const tap = (selector) => comp.querySelector(selector).dispatchEvent('tap');
  const type = (selector, value) =>
    comp.querySelector(selector).dispatchEvent('input', { detail: { value } });

  assert.equal(text('.step'), 'idle');
  tap('.sign-in');
  await until(() => comp.querySelector('.bind'), 'the bind screen');
  assert.equal(text('.routes'), 'bind/wechat-phone'); // the tenant's hint: VERIFY_PHONE first
  assert.ok(storage.get('bff.handle'), 'the handle is in wx storage');

  type('.user-name', 'alice');
  type('.password', 'not-her-password');
  tap('.bind-button');
  await until(() => text('.error'), 'the error');
  assert.match(text('.error-code'), /LOGIN\.1005$/);
  assert.ok(text('.request-id'), 'the request_id is shown');
  assert.equal(text('.step'), 'bind');

  type('.password', 'demo-password-1');
  tap('.bind-button');
  await until(() => comp.querySelector('.welcome'), 'signed in');
  assert.equal(text('.step'), 'signed-in');
  assert.equal(text('.error'), null);
  const stored = JSON.stringify([...storage.entries()]);
  assert.ok(!/eyJ/.test(stored), 'no token in wx storage');
  assert.deepEqual([...storage.keys()].sort(), ['bff.fingerprint', 'bff.handle']);

  tap('.logout');
  await until(() => text('.step') === 'idle', 'signed out');
  assert.equal(storage.has('bff.handle'), false);
  comp.detach();
});
