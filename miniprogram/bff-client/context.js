/**
 * context.js: the state of one client, in one object that every part is handed explicitly:
 * its Config, and what changes while it runs.
 */
'use strict';

const { resolveOptions } = require('./options.js');

/**
 * @typedef {import('./options.js').Config} Config
 * @typedef {import('../bff-client').RefreshResponse} RefreshResponseT
 * @typedef {{
 *   config: Config,
 *   device: { [name: string]: string } | null,
 *   handleFlight: import('./single-flight.js').Slot<string>,
 *   refreshFlight: import('./single-flight.js').Slot<RefreshResponseT>,
 *   idToken: string | null,
 *   idTokenDueAt: number,
 *   epoch: number,
 *   currentSession: { id: string, handle: string } | null,
 *   passwordPolicy: import('../bff-client').PasswordPolicy | null,
 * }} Context
 *  - device: the device headers, read on first use;
 *  - handleFlight: the wechat/session call in flight; refreshFlight: the refresh in flight;
 *  - idToken (memory only, never storage) and idTokenDueAt (device clock, ms: refresh from then on);
 *  - epoch: bumped by logout: answers to calls started before it are not kept;
 *  - currentSession: this device's session id, as the last listSessions() named it, and the
 *    handle it was listed with (endSession of that id signs this device out);
 *  - passwordPolicy: the policy the last outcome named for a pending PASSWORD_WARN /
 *    PASSWORD_EXPIRED step (changePassword checks a new password against it), else null.
 */

/** @param {import('../bff-client').BffClientOptions} options @returns {Context} */
function createContext(options) {
  return {
    config: resolveOptions(options),
    device: null,
    handleFlight: { promise: null },
    refreshFlight: { promise: null },
    idToken: null,
    idTokenDueAt: 0,
    epoch: 0,
    currentSession: null,
    passwordPolicy: null,
  };
}

module.exports = { createContext };
