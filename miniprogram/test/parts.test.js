'use strict';
// Unit tests of the module's internal parts (bff-client/*.js), each on its own: the pieces the
// client is built from, without a client around them. The client as a whole: unit.test.js.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { BffError } = require('../bff-client/errors.js');
const { singleFlight } = require('../bff-client/single-flight.js');
const { retryDelay } = require('../bff-client/retry.js');
const { parseRetryAfter, headerValue, headerSafe, parseBody } = require('../bff-client/wire.js');
const { jwtClaims, idTokenLifetimeS } = require('../bff-client/jwt.js');
const { readStored, writeStored, removeStored } = require('../bff-client/storage.js');
const { resolveOptions } = require('../bff-client/options.js');
const { ROUTES, withParams } = require('../bff-client/routes.js');
const { apiUrl } = require('../bff-client/api.js');
const { fakeJwt } = require('./support/fake-wx');

/** A promise and the functions that settle it. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('singleFlight', () => {
  test('overlapping calls share one start; the slot is free before onValue runs', async () => {
    const slot = { promise: null };
    const d = deferred();
    let starts = 0;
    const seen = [];
    const start = () => {
      starts += 1;
      return d.promise;
    };
    const first = singleFlight(slot, start, (v) => {
      seen.push(slot.promise);
      return v + 1;
    });
    const second = singleFlight(slot, start, () => 'unused: the first call is in flight');
    assert.equal(first, second);
    assert.equal(slot.promise, first);
    d.resolve(41);
    assert.deepEqual(await Promise.all([first, second]), [42, 42]);
    assert.equal(starts, 1);
    assert.deepEqual(seen, [null]);
    assert.equal(slot.promise, null);
    await singleFlight(slot, () => Promise.resolve(1), (v) => v);
    assert.equal(slot.promise, null, 'a later call starts anew');
  });

  test('an error frees the slot, goes to onError, and is rethrown', async () => {
    const slot = { promise: null };
    const errors = [];
    const boom = new Error('boom');
    const p = singleFlight(slot, () => Promise.reject(boom), (v) => v, (e) => errors.push(e));
    await assert.rejects(p, (e) => e === boom);
    assert.deepEqual(errors, [boom]);
    assert.equal(slot.promise, null);
  });

  test('onValue may throw: every caller sees that error', async () => {
    const slot = { promise: null };
    const bad = new Error('bad answer');
    const p = singleFlight(slot, () => Promise.resolve('x'), () => {
      throw bad;
    });
    await assert.rejects(p, (e) => e === bad);
    assert.equal(slot.promise, null);
  });
});

describe('retryDelay', () => {
  const policy = { attempts: 2, baseDelayMs: 500, maxDelayMs: 5000 };
  const err = (code, status, retryAfter = null) =>
    new BffError({ error_code: code, status, retry_after: retryAfter });
  /** The delay without its jitter (at most min(250, delay / 4 + 1) - 1 ms on top). */
  const within = (value, delay) => {
    assert.ok(value >= delay && value < delay + Math.min(250, delay / 4 + 1), `${value} ~ ${delay}`);
  };

  test('only BffErrors, and only while attempts remain', () => {
    assert.equal(retryDelay(policy, new Error('x'), 0), null);
    assert.equal(retryDelay(policy, err('BFF.RATE_LIMITED', 429, 1), 2), null);
    within(retryDelay(policy, err('BFF.RATE_LIMITED', 429, 1), 1), 1000);
  });

  test('429: Retry-After or nothing; a wait longer than maxDelayMs is not waited for', () => {
    assert.equal(retryDelay(policy, err('BFF.RATE_LIMITED', 429), 0), null);
    within(retryDelay(policy, err('BFF.RATE_LIMITED', 429, 2), 0), 2000);
    assert.equal(retryDelay(policy, err('BFF.RATE_LIMITED', 429, 6), 0), null);
    within(retryDelay(policy, err('BFF.RATE_LIMITED', 429, 0), 0), 0);
  });

  test('409 BFF.REQUEST_IN_PROGRESS: Retry-After, else 1 s', () => {
    within(retryDelay(policy, err('BFF.REQUEST_IN_PROGRESS', 409), 0), 1000);
    within(retryDelay(policy, err('BFF.REQUEST_IN_PROGRESS', 409, 3), 0), 3000);
  });

  test('503 from the IDaaS or the session store: Retry-After, else doubling from baseDelayMs', () => {
    for (const code of ['BFF.UPSTREAM_UNAVAILABLE', 'BFF.SESSION_STORE_UNAVAILABLE']) {
      within(retryDelay(policy, err(code, 503), 0), 500);
      within(retryDelay(policy, err(code, 503), 1), 1000);
      within(retryDelay(policy, err(code, 503, 4), 0), 4000);
    }
    const big = { attempts: 9, baseDelayMs: 500, maxDelayMs: 3000 };
    within(retryDelay(big, err('BFF.UPSTREAM_UNAVAILABLE', 503), 5), 3000); // capped, not refused
    assert.equal(retryDelay(policy, err('BFF.UPSTREAM_UNAVAILABLE', 502), 0), null);
    assert.equal(retryDelay(policy, err('HTTP.503', 503), 0), null);
  });

  test('anything else is not retried', () => {
    for (const code of ['BFF.VALIDATION', 'BFF.UNAUTHENTICATED', 'CLIENT.TIMEOUT', 'CLIENT.NETWORK']) {
      assert.equal(retryDelay(policy, err(code, 400), 0), null, code);
    }
  });
});

describe('wire helpers', () => {
  test('parseRetryAfter: seconds, an HTTP date, or null', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('7', now), 7);
    assert.equal(parseRetryAfter('-3', now), 0);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:09 GMT', now), 9);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter(undefined, now), null);
    assert.equal(parseRetryAfter('  ', now), null);
    assert.equal(parseRetryAfter('soon', now), null);
  });

  test('headerValue: any spelling of the name; strings and numbers only', () => {
    const headers = { 'retry-after': 3, 'X-REQUEST-ID': 'r-1', Weird: { a: 1 } };
    assert.equal(headerValue(headers, 'Retry-After'), '3');
    assert.equal(headerValue(headers, 'x-request-id'), 'r-1');
    assert.equal(headerValue(headers, 'Weird'), undefined);
    assert.equal(headerValue(headers, 'Missing'), undefined);
    assert.equal(headerValue(null, 'X'), undefined);
  });

  test('headerSafe: printable ASCII, one space, at most 512 characters, else the fallback', () => {
    assert.equal(headerSafe('iOS\t17.1\n', 'x'), 'iOS 17.1');
    assert.equal(headerSafe('微信 8.0', 'x'), '8.0');
    assert.equal(headerSafe('', 'fallback'), 'fallback');
    assert.equal(headerSafe(undefined, 'fallback'), 'fallback');
    assert.equal(headerSafe('a'.repeat(600), 'x').length, 512);
  });

  test('parseBody: JSON text parsed, other text kept, empty is null', () => {
    assert.deepEqual(parseBody('{"a":1}'), { a: 1 });
    assert.equal(parseBody('<html>502</html>'), '<html>502</html>');
    assert.equal(parseBody(''), null);
    assert.deepEqual(parseBody({ a: 1 }), { a: 1 });
  });
});

describe('jwt', () => {
  test('the claims, UTF-8 included; null when unreadable', () => {
    assert.deepEqual(jwtClaims(fakeJwt({ sub: '张三', exp: 5 })), { sub: '张三', exp: 5 });
    assert.equal(jwtClaims('not-a-jwt'), null);
    assert.equal(jwtClaims('a.!!!.c'), null);
  });

  test('the lifetime: exp - iat, else exp - now, else 0', () => {
    const now = 1000000 * 1000;
    assert.equal(idTokenLifetimeS(fakeJwt({ iat: 10, exp: 310 }), now), 300); // device clock ignored
    assert.equal(idTokenLifetimeS(fakeJwt({ exp: 1000120 }), now), 120);
    assert.equal(idTokenLifetimeS(fakeJwt({ exp: 999000 }), now), 0);
    assert.equal(idTokenLifetimeS('garbage', now), 0);
  });
});

describe('storage', () => {
  test('a throwing storage costs the value, never an exception', () => {
    const broken = {
      getStorageSync() {
        throw new Error('no');
      },
      setStorageSync() {
        throw new Error('full');
      },
    };
    assert.equal(readStored(broken, 'k'), null);
    writeStored(broken, 'k', 'v');
    removeStored(broken, 'k');
  });

  test('only non-empty strings are read back; without removeStorageSync, "" is written', () => {
    const map = new Map([['n', 5], ['e', '']]);
    const storage = { getStorageSync: (k) => map.get(k), setStorageSync: (k, v) => map.set(k, v) };
    assert.equal(readStored(storage, 'n'), null);
    assert.equal(readStored(storage, 'e'), null);
    writeStored(storage, 'k', 'v');
    assert.equal(readStored(storage, 'k'), 'v');
    removeStored(storage, 'k');
    assert.equal(map.get('k'), '');
  });
});

describe('options', () => {
  const storage = { getStorageSync() {}, setStorageSync() {} };
  const deps = { request: () => null, login: () => null, storage };

  test('the defaults', () => {
    const config = resolveOptions({ baseUrl: 'https://api.example.com//', ...deps });
    assert.equal(config.baseUrl, 'https://api.example.com/api/v1');
    assert.equal(config.gatewayUrl, 'https://api.example.com'); // callApi's paths join it
    assert.equal(config.timeoutMs, 40000);
    assert.equal(config.refreshMarginS, 60);
    assert.deepEqual(config.retry, { attempts: 2, baseDelayMs: 500, maxDelayMs: 5000 });
    assert.deepEqual(config.keys, { handle: 'bff.handle', fingerprint: 'bff.fingerprint' });
    assert.equal(config.useHandles, true);
    assert.match(config.agent, /^bff-client\/\d+\.\d+\.\d+$/);
    assert.equal(config.language, undefined);
    assert.equal(config.now, Date.now);
  });

  test('what is given wins; zeros are kept where they mean something', () => {
    const config = resolveOptions({
      baseUrl: 'http://127.0.0.1:8000',
      ...deps,
      storagePrefix: 'acme',
      refreshMarginS: 0,
      retry: { attempts: 0 },
      handles: false,
      agent: 'acme-mp/1.0',
      language: 'zh',
    });
    assert.deepEqual(config.keys, { handle: 'acme.handle', fingerprint: 'acme.fingerprint' });
    assert.equal(config.refreshMarginS, 0);
    assert.deepEqual(config.retry, { attempts: 0, baseDelayMs: 500, maxDelayMs: 5000 });
    assert.equal(config.useHandles, false);
    assert.equal(config.agent, 'acme-mp/1.0');
    assert.equal(config.language, 'zh');
  });
});

test('routes: the ones safe to repeat are exactly those the guide lists', () => {
  const repeatable = Object.keys(ROUTES).filter((name) => ROUTES[name].repeatable);
  assert.deepEqual(repeatable.sort(), [
    'captcha',
    'endSession',
    'login',
    'logout',
    'mfa',
    'refresh',
    'session',
    'sessions',
    'wechatSession',
  ]);
  assert.deepEqual(
    Object.keys(ROUTES).filter((name) => !ROUTES[name].auth),
    ['wechatSession'],
  );
});

test('withParams: each {name} of the path URL-encoded; the route otherwise unchanged', () => {
  const r = withParams(ROUTES.endSession, { id: 'a/b c?' });
  assert.equal(r.path, '/sessions/a%2Fb%20c%3F');
  assert.equal(r.method, 'DELETE');
  assert.equal(ROUTES.endSession.path, '/sessions/{id}');
});

test("apiUrl: a path joined to baseUrl, or a URL on baseUrl's origin; nothing else", () => {
  const root = 'https://api.example.com';
  assert.equal(apiUrl(root, '/orders/1?x=1'), 'https://api.example.com/orders/1?x=1');
  assert.equal(apiUrl('https://gw.example.com/shop', '/orders'), 'https://gw.example.com/shop/orders');
  assert.equal(apiUrl(root, 'https://API.example.com/orders'), 'https://API.example.com/orders');
  assert.equal(apiUrl(root, 'https://api.example.com'), 'https://api.example.com');
  for (const foreign of [
    'https://evil.example.com/orders',
    'https://api.example.com.evil.com/x',
    'https://api.example.com@evil.com/x',
    'https://api.example.com:8443/x',
    'http://api.example.com/x',
    '//evil.example.com/x',
    'orders',
    '',
    undefined,
  ]) {
    assert.equal(apiUrl(root, foreign), null, String(foreign));
  }
});
