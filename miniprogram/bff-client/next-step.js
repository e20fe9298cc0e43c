/**
 * next-step.js: nextStep(outcome), what the UI does with a login or bind outcome. Pure: it
 * needs no client.
 */
'use strict';

/** @typedef {import('../bff-client').NextStep} NextStepResult */
/** @typedef {import('../bff-client').RouteName} RouteNameT */

const BIND_ROUTES = {
  phone: /** @type {RouteNameT[]} */ (['bind/wechat-phone', 'bind/verification-code:sms']),
  email: /** @type {RouteNameT[]} */ (['bind/verification-code:email']),
  password: /** @type {RouteNameT[]} */ (['bind/username-password']),
};
const REGISTER_ROUTES = {
  phone: /** @type {RouteNameT[]} */ (['register/wechat-phone', 'register/verification-code:sms']),
  email: /** @type {RouteNameT[]} */ (['register/verification-code:email']),
};

/**
 * What the UI does with a login or bind outcome: SIGNED_IN (go on; PASSWORD_WARN too, with a
 * banner), BIND / BIND_OR_REGISTER (a screen offering `routes`, best first, following the
 * tenant's `flows`), or BLOCKED (MFA_AUTH, ACCESS_DENIED, PASSWORD_EXPIRED, anything unknown:
 * a message naming the status, no automatic retry).
 * @param {{ status: string, flows?: string[] }} outcome
 * @returns {NextStepResult}
 */
function nextStep(outcome) {
  const status = outcome.status;
  const flows = outcome.flows || [];
  if (status === 'SUCCESS' || status === 'PASSWORD_WARN') {
    return { step: 'SIGNED_IN', status, routes: [] };
  }
  if (status !== 'SOCIAL_BIND' && status !== 'USER_REGISTER') {
    return { step: 'BLOCKED', status, routes: [] };
  }
  const phone = flows.indexOf('VERIFY_PHONE') >= 0;
  const email = flows.indexOf('VERIFY_EMAIL') >= 0;
  /** @type {('phone' | 'email' | 'password')[]} */
  let order = ['password', 'phone', 'email']; // no hint: the password form first
  if (phone) order = ['phone', 'password', 'email'];
  else if (email) order = ['email', 'password', 'phone'];
  /** @type {RouteNameT[]} */
  const routes = [];
  order.forEach((kind) => routes.push.apply(routes, BIND_ROUTES[kind]));
  if (status === 'USER_REGISTER') {
    order.forEach((kind) => {
      if (kind !== 'password') routes.push.apply(routes, REGISTER_ROUTES[kind]);
    });
  }
  return { step: status === 'SOCIAL_BIND' ? 'BIND' : 'BIND_OR_REGISTER', status, routes };
}

module.exports = { nextStep };
