// Compiled by `tsc --noEmit` (never run): Tencent's own `wx` (miniprogram-api-typings) fits what
// createBffClient accepts, and the declared surface is usable as documented.
import { createBffClient, isCode, nextStep, BffError, BffClient, Outcome } from '../../bff-client';

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
  try {
    return await bff.getIdToken();
  } catch (err) {
    if (isCode(err, 'BFF.SESSION_EXPIRED')) return null;
    if (err instanceof BffError && err.retry_after !== null) return String(err.retry_after);
    throw err;
  } finally {
    await bff.logout();
  }
}

void page(explicit);
void page(createBffClient({ baseUrl: 'https://api.example.com' }));
