'use strict';
// One simulated phone for the end-to-end tests: the real bff-client.js, with wx.request over
// node:http, wx.login answered by the WeChat simulator for one WeChat user (openid), its own
// storage, and a clock that a test can move forward (the device clock only: bff's is real).
const { createBffClient } = require('../../bff-client');
const { nodeRequest } = require('./node-request');

/**
 * @param {object} server  from startDevServer()
 * @param {{ openid: string, storage?: Map, request?: Function, options?: object }} opts
 */
function createDevice(server, opts) {
  const storage = opts.storage || new Map();
  const calls = [];
  let skewMs = 0;
  const transport = opts.request || nodeRequest;
  const device = {
    storage,
    calls,
    /** Requests sent to a route, e.g. count('POST /wechat/session'). */
    count: (route) => calls.filter((c) => `${c.method} ${c.path}` === route).length,
    /** Move the device clock (the id_token's refresh time is judged on it). */
    advanceClock: (ms) => {
      skewMs += ms;
    },
  };
  device.bff = createBffClient({
    baseUrl: server.baseUrl,
    request: (o) => {
      calls.push({
        method: o.method,
        path: new URL(o.url).pathname.replace(/^\/api\/v1/, ''),
        header: o.header,
      });
      return transport(o);
    },
    login: ({ success, fail }) => {
      server.sim.wxCode(opts.openid).then(
        (code) => success({ code }),
        (e) => fail({ errMsg: `login:fail ${e.message}` }),
      );
    },
    storage: {
      getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
      setStorageSync: (k, v) => storage.set(k, v),
      removeStorageSync: (k) => storage.delete(k),
    },
    wx: {
      getDeviceInfo: () => ({ platform: 'ios', system: 'iOS 17.4', brand: 'Apple', model: 'iPhone 15' }),
      getAppBaseInfo: () => ({ language: 'zh_CN', version: '8.0.50', SDKVersion: '3.4.0' }),
    },
    now: () => Date.now() + skewMs,
    agent: 'bff-e2e/1.0',
    ...(opts.options || {}),
  });
  return device;
}

module.exports = { createDevice };
