/**
 * jwt.js: how long an id_token lives, read from its own claims. Unverified on purpose: bff
 * verified the token; the client only needs `exp` and `iat` to refresh it in time.
 */
'use strict';

const { asRecord } = require('./wire.js');

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The claims of a JWT, unverified: only to read `exp`/`iat` (bff verified it). @param {string} jwt */
function jwtClaims(jwt) {
  const part = jwt.split('.')[1] || '';
  let acc = 0;
  let bits = 0;
  let escaped = '';
  for (let i = 0; i < part.length; i++) {
    const v = B64URL.indexOf(part[i]);
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      escaped += '%' + ('0' + ((acc >> bits) & 0xff).toString(16)).slice(-2);
    }
  }
  try {
    return asRecord(JSON.parse(decodeURIComponent(escaped))); // UTF-8 bytes → text
  } catch (e) {
    return null;
  }
}

/** Seconds an id_token lives from now, by its own claims (exp - iat: immune to a wrong device clock). */
function idTokenLifetimeS(/** @type {string} */ jwt, /** @type {number} */ nowMs) {
  const claims = jwtClaims(jwt);
  const exp = claims && claims.exp;
  const iat = claims && claims.iat;
  if (typeof exp !== 'number') return 0; // unreadable: refresh on next use
  if (typeof iat === 'number' && exp > iat) return exp - iat;
  return Math.max(0, exp - nowMs / 1000);
}

module.exports = { jwtClaims, idTokenLifetimeS };
