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

/** The next steps pending after a login or bind: the step the page shows for each. */
const PENDING_STEPS = {
  MFA_AUTH: /** @type {import('../bff-client').Step} */ ('MFA'),
  PASSWORD_WARN: /** @type {import('../bff-client').Step} */ ('PASSWORD_WARN'),
  PASSWORD_EXPIRED: /** @type {import('../bff-client').Step} */ ('PASSWORD_EXPIRED'),
};

/**
 * What the UI does with a login or bind outcome: SIGNED_IN (go on), BIND / BIND_OR_REGISTER (a
 * screen offering `routes`, best first, following the tenant's `flows`), MFA (the second-factor
 * page), PASSWORD_WARN (skip or change the password), PASSWORD_EXPIRED (change it), or BLOCKED
 * (ACCESS_DENIED, anything unknown: a message naming the status, no automatic retry). A
 * PASSWORD_WARN that came with an id_token is SIGNED_IN (a bff that signs in and only warns).
 * @param {{ status: string, flows?: string[], id_token?: string }} outcome
 * @returns {NextStepResult}
 */
function nextStep(outcome) {
  const status = outcome.status;
  const flows = outcome.flows || [];
  if (status === 'SUCCESS' || (status === 'PASSWORD_WARN' && outcome.id_token)) {
    return { step: 'SIGNED_IN', status, routes: [] };
  }
  if (Object.prototype.hasOwnProperty.call(PENDING_STEPS, status)) {
    return { step: PENDING_STEPS[/** @type {keyof PENDING_STEPS} */ (status)], status, routes: [] };
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
