'use strict';
// wx.request's contract on top of node:http, for the end-to-end tests: the module under test
// talks to the real bff exactly as it would through wx.request on a phone.
//  - success({ statusCode, data, header }) for every HTTP answer (4xx/5xx included), with data
//    JSON-parsed when it parses (dataType 'json'), else the text;
//  - fail({ errMsg: 'request:fail timeout' }) when `timeout` ms pass, 'request:fail <reason>'
//    when no answer comes; the returned task has abort().
// Loopback only: these tests never talk to anything but 127.0.0.1.
const http = require('node:http');

function nodeRequest(options) {
  const url = new URL(options.url);
  if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
    throw new Error(`nodeRequest: loopback only, not ${url.origin}`);
  }
  let body;
  if (options.data !== undefined) {
    body = typeof options.data === 'string' ? options.data : JSON.stringify(options.data);
  }
  const headers = { ...options.header };
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  let settled = false;
  const settle = (fn, arg) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    fn(arg);
  };
  const req = http.request({
    host: '127.0.0.1',
    port: url.port,
    path: url.pathname + url.search,
    method: options.method || 'GET',
    headers,
    agent: false, // no keep-alive: nothing lingers after a test
  });
  const timer = options.timeout
    ? setTimeout(() => {
        settle(options.fail, { errMsg: 'request:fail timeout' });
        req.destroy();
      }, options.timeout)
    : null;
  req.on('response', (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let data = text;
      if (options.dataType === 'json' && text !== '') {
        try {
          data = JSON.parse(text);
        } catch {
          data = text;
        }
      }
      settle(options.success, {
        statusCode: res.statusCode,
        data,
        header: res.headers,
        errMsg: 'request:ok',
      });
    });
    res.on('error', (e) => settle(options.fail, { errMsg: `request:fail ${e.message}` }));
  });
  req.on('error', (e) => settle(options.fail, { errMsg: `request:fail ${e.message}` }));
  if (body !== undefined) req.write(body);
  req.end();
  return {
    abort() {
      settle(options.fail, { errMsg: 'request:fail abort' });
      req.destroy();
    },
  };
}

module.exports = { nodeRequest };
