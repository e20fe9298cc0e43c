/**
 * routes.js: the routes of bff's API the client calls, and what each allows.
 */
'use strict';

/**
 * A route of bff's API; a `{name}` in its path is filled in per call (withParams).
 * `repeatable`: safe to send again after 409/429/503 (it spends nothing single-use, or gets a
 * fresh wx.login code per attempt). `outcome`: answers a login outcome.
 * @typedef {{ method: 'GET' | 'POST' | 'DELETE', path: string, auth: boolean,
 *             repeatable: boolean, outcome: boolean }} Route
 */

/**
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path
 * @param {Partial<Route>} [flags]
 * @returns {Route}
 */
function route(method, path, flags) {
  const r = /** @type {Route} */ ({ method, path, auth: true, repeatable: false, outcome: false });
  return Object.assign(r, flags || {});
}

const ROUTES = {
  wechatSession: route('POST', '/wechat/session', { auth: false, repeatable: true }),
  login: route('POST', '/login', { repeatable: true, outcome: true }),
  loginPhone: route('POST', '/login/phone', { outcome: true }),
  bindPassword: route('POST', '/bind/username-password', { outcome: true }),
  bindWechatPhone: route('POST', '/bind/wechat-phone', { outcome: true }),
  bindCode: route('POST', '/bind/verification-code', { outcome: true }),
  registerWechatPhone: route('POST', '/register/wechat-phone', { outcome: true }),
  registerCode: route('POST', '/register/verification-code', { outcome: true }),
  captcha: route('GET', '/captcha', { repeatable: true }),
  sendCode: route('POST', '/verification-codes'),
  refresh: route('POST', '/session/refresh', { repeatable: true }),
  session: route('GET', '/session', { repeatable: true }),
  logout: route('DELETE', '/session', { repeatable: true }),
  sessions: route('GET', '/sessions', { repeatable: true }),
  endSession: route('DELETE', '/sessions/{id}', { repeatable: true }),
  mfa: route('GET', '/mfa', { repeatable: true }),
  sendMfaCode: route('POST', '/mfa/codes'),
  verifyMfa: route('POST', '/mfa/verify', { outcome: true }),
  skipPassword: route('POST', '/password/skip', { outcome: true }),
  changePassword: route('POST', '/password/change', { outcome: true }),
  unbindWechat: route('DELETE', '/wechat-binding'),
};

/**
 * `r` with each `{name}` of its path replaced by params[name], URL-encoded.
 * @param {Route} r @param {{ [name: string]: string }} params @returns {Route}
 */
function withParams(r, params) {
  const path = r.path.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
  return Object.assign({}, r, { path });
}

module.exports = { ROUTES, withParams };
