// Compiled by `tsc --noEmit` (never run): Tencent's own `wx` (miniprogram-api-typings) fits what
// createBffClient accepts, and the declared surface is usable as documented.
import {
  createBffClient,
  isCode,
  nextStep,
  BffError,
  BffClient,
  Outcome,
  SessionInfo,
  RequestResult,
} from '../../bff-client';

// Every default the module takes from wx, passed explicitly: wx.request, wx.login, wx's storage.
const explicit: BffClient = createBffClient({
  baseUrl: 'https://api.example.com',
  request: wx.request,
  login: wx.login,
  storage: wx,
  wx,
});

async function page(bff: BffClient): Promise<string | null> {
  const out: Outcome = await bff.login();
  const step = nextStep(out);
  if (step.step === 'BIND' && step.routes[0] === 'bind/username-password') {
    await bff.bindWithPassword('alice', 'secret');
  }
  await bff.bindWithCode({ mobile: '+86-13800000000' }, '123456');
  await bff.registerWithCode({ email: 'a@example.com' }, '123456');
  // @ts-expect-error: exactly one of mobile and email
  await bff.bindWithCode({ mobile: '+86-13800000000', email: 'a@example.com' }, '123456');
  const cap = await bff.getCaptcha();
  await bff.sendCode({
    channel: 'sms',
    to: '+86-13800000000',
    purpose: 'bind',
    captcha: { token: cap.token, point_json: '{}' },
  });
  const devices: SessionInfo[] = await bff.listSessions();
  const others = devices.filter((d) => !d.current && d.os !== null);
  if (others.length > 0) await bff.endSession(others[0].id);
  const res: RequestResult = await bff.callApi({
    url: '/orders',
    method: 'PUT',
    data: { item: 42 },
    header: { 'X-Tenant': 'acme' },
  });
  if (res.statusCode === 409) return null;
  // @ts-expect-error: wx.request has no PATCH
  await bff.callApi({ url: '/orders', method: 'PATCH' });
  try {
    return await bff.getIdToken();
  } catch (err) {
    if (isCode(err, 'BFF.SESSION_EXPIRED') || isCode(err, 'BFF.SESSION_REVOKED')) return null;
    if (err instanceof BffError && err.retry_after !== null) return String(err.retry_after);
    throw err;
  } finally {
    await bff.logout();
  }
}

void page(explicit);
void page(createBffClient({ baseUrl: 'https://api.example.com' }));
