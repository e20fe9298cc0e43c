/**
 * device.js: the device headers bff requires on every call (X-operating-sys-version,
 * X-device-fingerprint, X-agent, X-L), read once per client.
 */
'use strict';

const { headerSafe, randomHex } = require('./wire.js');
const { readStored, writeStored } = require('./storage.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('../bff-client').WxLike} WxLikeT */

/** @template T @param {(() => T) | undefined} read @returns {Partial<T>} */
function safely(read) {
  try {
    return (read && read()) || {};
  } catch (e) {
    return {};
  }
}

/**
 * What wx tells about the phone and the app: wx.getDeviceInfo / wx.getAppBaseInfo (base library
 * 2.20.1+), else the deprecated all-in-one wx.getSystemInfoSync.
 * @param {WxLikeT} w
 */
function readDevice(w) {
  const info = safely(w.getDeviceInfo && w.getDeviceInfo.bind(w));
  const app = safely(w.getAppBaseInfo && w.getAppBaseInfo.bind(w));
  const incomplete = !info.platform || !info.system || !app.language || !app.version;
  const legacy = incomplete ? safely(w.getSystemInfoSync && w.getSystemInfoSync.bind(w)) : {};
  return {
    platform: info.platform || legacy.platform,
    system: info.system || legacy.system,
    language: app.language || legacy.language || '',
    wechat: app.version || legacy.version,
    base: app.SDKVersion || legacy.SDKVersion,
  };
}

/**
 * An identifier, not a secret; kept stable: the IDaaS expects the same one on every call.
 * @param {Context} ctx
 */
function fingerprint(ctx) {
  const { storage, keys } = ctx.config;
  let value = readStored(storage, keys.fingerprint);
  if (!value) {
    value = randomHex(16);
    writeStored(storage, keys.fingerprint, value);
  }
  return value;
}

/**
 * X-operating-sys-version, X-device-fingerprint, X-agent, X-L: read once, sent on every call.
 * @param {Context} ctx
 */
function deviceHeaders(ctx) {
  if (ctx.device) return ctx.device;
  const config = ctx.config;
  const d = readDevice(config.wx);
  const language = config.language || d.language;
  const id = fingerprint(ctx);
  let agent = config.agent;
  if (d.wechat) agent += ' WeChat/' + d.wechat;
  if (d.base) agent += ' base/' + d.base;
  ctx.device = {
    'X-operating-sys-version': headerSafe([d.platform, d.system].filter(Boolean).join(' '), 'unknown'),
    'X-device-fingerprint': id,
    'X-agent': headerSafe(agent, 'bff-client'),
    'X-L': config.language ? headerSafe(config.language, 'en') : /^zh/i.test(language) ? 'zh' : 'en',
  };
  return ctx.device;
}

module.exports = { deviceHeaders };
