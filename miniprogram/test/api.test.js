'use strict';
// callApi: the company's own APIs behind the same gateway as bff, against a fake wx whose fake
// gateway asks the fake bff about the handle (401/403 with X-BFF-Error and bff's envelope when
// it refuses it) and otherwise hands the request to the API.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { createBffClient, BffError } = require('../bff-client');
const { createFakeWx, createClock } = require('./support/fake-wx');

const BASE = 'https://api.example.com';

/** The gateway's refusal: bff's envelope, and its code in X-BFF-Error. */
function refusal(fake, status, code) {
  return fake.envelope(status, code, { headers: { 'X-BFF-Error': code } });
}

/**
 * A client on a fake wx with the company's API at /orders behind the fake gateway: `api(req)`
 * answers what passed it (default 200 { orders: [] }); fake.gate.expired makes bff answer
 * BFF.SESSION_EXPIRED.
 */
function setup(options = {}, api = () => ({ status: 200, body: { orders: [] }, headers: { ETag: 'v1' } })) {
  const clock = createClock();
  const fake = createFakeWx({ clock });
  fake.gate = { expired: false };
  const gateway = (req) => {
    const handle = fake.handleOf(req);
    if (fake.revoked.has(handle)) return refusal(fake, 401, 'BFF.SESSION_REVOKED');
    if (!fake.handles.has(handle)) return refusal(fake, 401, 'BFF.UNAUTHENTICATED');
    if (fake.gate.expired) return refusal(fake, 401, 'BFF.SESSION_EXPIRED');
    return api(req);
  };
  for (const method of ['GET', 'POST', 'PUT']) fake.routes[`${method} /orders`] = gateway;
  const bff = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep, ...options });
  return { fake, clock, bff };
}

describe('callApi', () => {
  test('the request with Bearer <handle>; wx.request\'s answer as it came', async () => {
    const { fake, bff } = setup();
    const res = await bff.callApi({
      url: '/orders',
      method: 'POST',
      data: { item: 42 },
      header: { 'X-Tenant': 'acme', authorization: 'Bearer mine', 'Content-Type': 'application/json' },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.data, { orders: [] });
    assert.deepEqual(res.header, { ETag: 'v1' });
    assert.equal(res.errMsg, 'request:ok'); // wx's own fields too
    const call = fake.calls.at(-1);
    assert.equal(call.url, `${BASE}/orders`);
    assert.equal(call.method, 'POST');
    assert.deepEqual(call.data, { item: 42 });
    const handle = fake.storage.get('bff.handle');
    assert.deepEqual(call.header, {
      'X-Tenant': 'acme',
      'Content-Type': 'application/json',
      'X-Request-ID': call.header['X-Request-ID'],
      Authorization: `Bearer ${handle}`, // the caller's, in any spelling, replaced
    });
    assert.match(call.header['X-Request-ID'], /^mp-[0-9a-z]+-[0-9a-f]{12}$/);
    // The first use got the handle as every other method does: wx.login, then wechat/session.
    assert.deepEqual(
      fake.calls.map((c) => `${c.method} ${c.path}`),
      ['POST /wechat/session', 'POST /orders'],
    );
  });

  test("GET and the client's timeout by default; the caller's X-Request-ID and options kept", async () => {
    const { fake, bff } = setup();
    await bff.callApi({ url: '/orders' });
    assert.equal(fake.calls.at(-1).method, 'GET');
    assert.equal(fake.calls.at(-1).timeout, 40000);
    let seen;
    const plain = fake.wx.request;
    fake.wx.request = (o) => {
      seen = o;
      return plain(o);
    };
    await bff.callApi({
      url: `${BASE}/orders?page=2`,
      method: 'PUT',
      header: { 'x-request-id': 'page-7' },
      timeout: 5000,
      responseType: 'text',
      success: () => assert.fail('the caller\'s callbacks are not wx\'s'),
      complete: () => assert.fail('the caller\'s callbacks are not wx\'s'),
    });
    assert.equal(seen.url, `${BASE}/orders?page=2`);
    assert.equal(seen.timeout, 5000);
    assert.equal(seen.responseType, 'text');
    assert.equal(seen.dataType, 'json');
    assert.equal(seen.complete, undefined);
    assert.equal(seen.header['x-request-id'], 'page-7');
    assert.equal(seen.header['X-Request-ID'], undefined);
  });

  test("the API's own answers are returned, errors included, never retried", async () => {
    for (const answer of [
      { status: 404, body: { message: 'no such order' } },
      { status: 500, body: '<html>oops</html>' },
      { status: 401, body: { error: 'not your order' } }, // the API's 401: no X-BFF-Error
      { status: 403, body: { error_code: 'SHOP.FORBIDDEN' } }, // not bff's code
      { status: 503, body: '', headers: { 'Retry-After': '1' } },
    ]) {
      const { fake, bff } = setup({}, () => answer);
      const res = await bff.callApi({ url: '/orders' });
      assert.equal(res.statusCode, answer.status);
      assert.deepEqual(res.data, answer.body);
      assert.equal(fake.count('GET /orders'), 1);
      assert.ok(fake.storage.get('bff.handle'));
    }
  });

  test('a URL off baseUrl\'s origin: CLIENT.BAD_ARGUMENT, nothing sent (not even wx.login)', async () => {
    const { fake, bff } = setup();
    for (const url of ['https://evil.example.com/orders', '//evil.example.com/x', 'orders', '']) {
      const err = await bff.callApi({ url }).catch((e) => e);
      assert.ok(err instanceof BffError);
      assert.equal(err.error_code, 'CLIENT.BAD_ARGUMENT', url);
    }
    assert.equal(fake.calls.length, 0);
    assert.equal(fake.loginCalls, 0);
  });

  test('no answer: CLIENT.NETWORK / CLIENT.TIMEOUT with our request id, not retried', async () => {
    const { fake, bff } = setup({}, () => ({ fail: 'request:fail timeout' }));
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
    assert.equal(err.request_id, fake.calls.at(-1).header['X-Request-ID']);
    assert.equal(fake.count('GET /orders'), 1);
  });

  test('handles: false (the gateway knows the caller): no Authorization of ours, no handle', async () => {
    const { fake, bff } = setup({ handles: false });
    fake.routes['GET /orders'] = () => ({ status: 200, body: 'ok' });
    await bff.callApi({ url: '/orders', header: { Authorization: 'Basic abc' } });
    assert.equal(fake.calls.at(-1).header.Authorization, 'Basic abc');
    assert.equal(fake.count('POST /wechat/session'), 0);
  });
});

describe('callApi: the gateway refuses the handle', () => {
  test('401 BFF.UNAUTHENTICATED: a new handle (wx.login + wechat/session), then once more', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    const stale = fake.storage.get('bff.handle');
    fake.handles.clear(); // unknown to bff now (expired)
    const res = await bff.callApi({ url: '/orders', method: 'POST', data: { item: 1 } });
    assert.equal(res.statusCode, 200);
    assert.equal(fake.count('POST /orders'), 2);
    assert.equal(fake.count('POST /wechat/session'), 2);
    const fresh = fake.storage.get('bff.handle');
    assert.notEqual(fresh, stale);
    assert.equal(fake.calls.at(-1).header.Authorization, `Bearer ${fresh}`);
    assert.deepEqual(fake.calls.at(-1).data, { item: 1 });
  });

  test('401 BFF.UNAUTHENTICATED again with the new handle is thrown, not looped on', async () => {
    const { fake, bff } = setup();
    fake.routes['GET /orders'] = () => refusal(fake, 401, 'BFF.UNAUTHENTICATED');
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'BFF.UNAUTHENTICATED');
    assert.equal(fake.count('GET /orders'), 2);
    assert.equal(fake.count('POST /wechat/session'), 2);
  });

  test('concurrent 401s share one renewal with the calls of bff', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    fake.handles.clear();
    const [res, status] = await Promise.all([bff.callApi({ url: '/orders' }), bff.sessionStatus()]);
    assert.equal(res.statusCode, 200);
    assert.equal(status.active, true);
    assert.equal(fake.count('POST /wechat/session'), 2);
  });

  test('401 BFF.SESSION_REVOKED: rejected with that code, the handle dropped, no sign-in', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.revoke(fake.storage.get('bff.handle'));
    const logins = fake.loginCalls;
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.ok(err instanceof BffError);
    assert.ok(err.is('BFF.SESSION_REVOKED'));
    assert.equal(err.status, 401);
    assert.equal(err.error_msg, 'bff.session_revoked');
    assert.match(err.request_id, /^srv-/); // the envelope's
    assert.equal(fake.storage.get('bff.handle'), undefined);
    assert.equal(fake.count('GET /orders'), 1);
    assert.equal(fake.count('POST /wechat/session'), 1);
    assert.equal(fake.loginCalls, logins);
    await bff.getIdToken(); // the id_token went with the handle: from the server, with a new one
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('401 BFF.SESSION_EXPIRED: rejected (sign in again); the handle stays, the id_token goes', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.gate.expired = true;
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'BFF.SESSION_EXPIRED');
    assert.equal(err.status, 401);
    assert.equal(fake.count('GET /orders'), 1);
    assert.ok(fake.handles.has(fake.storage.get('bff.handle')));
    await bff.getIdToken();
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('403 with X-BFF-Error: rejected with that code; the handle stays', async () => {
    const { fake, bff } = setup({}, () => refusal(fake, 403, 'BFF.FORBIDDEN'));
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'BFF.FORBIDDEN');
    assert.equal(err.status, 403);
    assert.ok(fake.storage.get('bff.handle'));
  });

  test('the header alone names the code (a gateway page for a body); our request id then', async () => {
    const { fake, bff } = setup({}, () => ({
      status: 401,
      body: '<html>401 Authorization Required</html>',
      headers: { 'x-bff-error': 'BFF.SESSION_REVOKED' },
    }));
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'BFF.SESSION_REVOKED');
    assert.equal(err.request_id, fake.calls.at(-1).header['X-Request-ID']);
    assert.equal(fake.storage.get('bff.handle'), undefined);
  });

  test("bff's envelope without the header is bff's refusal too", async () => {
    const { fake, bff } = setup({}, () => fake.envelope(401, 'BFF.SESSION_EXPIRED', { request_id: 'gw-1' }));
    const err = await bff.callApi({ url: '/orders' }).catch((e) => e);
    assert.equal(err.error_code, 'BFF.SESSION_EXPIRED');
    assert.equal(err.request_id, 'gw-1');
  });
});
