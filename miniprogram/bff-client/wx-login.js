/**
 * wx-login.js: a fresh wx.login code, as a promise (a code is good for one call only).
 */
'use strict';

const { clientError } = require('./errors.js');

/** @param {import('../bff-client').LoginFunction} login @returns {Promise<string>} */
function wxLoginCode(login) {
  return new Promise((resolve, reject) => {
    const fail = (/** @type {string} */ msg) => reject(clientError('CLIENT.WX_LOGIN', msg));
    try {
      login({
        success: (res) => (res && res.code ? resolve(res.code) : fail('wx.login gave no code')),
        fail: (e) => fail((e && e.errMsg) || 'wx.login failed'),
      });
    } catch (e) {
      fail(String(e));
    }
  });
}

module.exports = { wxLoginCode };
