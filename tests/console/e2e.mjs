// End-to-end test of the ops console in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; no browser download).
// Usage: node e2e.mjs '<json config>' (see tests/ops_console.rs).
// Exits 0 when every step passed; prints the step that failed otherwise.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const cfg = JSON.parse(process.argv[2]);
const shots = cfg.screenshots;
mkdirSync(shots, { recursive: true });
const fail = (msg) => {
  throw new Error(msg);
};
const step = (name) => console.log(`step: ${name}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const violations = [];
const offsite = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => violations.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(cfg.url) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) offsite.push(r.url());
  });

  const signIn = async (key) => {
    await page.goto(`${cfg.url}/ops/`);
    await page.fill('#key', key);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#pools');
  };

  step('sign in as app is refused');
  await page.goto(`${cfg.url}/ops/`);
  await page.fill('#key', cfg.app);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#signin-error')?.textContent.length > 0);
  if (await page.evaluate(() => document.cookie) !== '') fail('a cookie was set');

  step('sign in as ops; pool list');
  await signIn(cfg.ops);
  await page.waitForSelector(`[data-pool="${cfg.pool}"]`);
  if ((await page.context().cookies()).length) fail('cookies set');
  await page.screenshot({ path: `${shots}/pools.png`, fullPage: true });

  step('pool page shows the counts of the bindings created through the API');
  const t0 = Date.now();
  await page.click(`[data-pool="${cfg.pool}"]`);
  await page.waitForSelector('#numbers table');
  const renderMs = Date.now() - t0;
  console.log(`pool page rendered in ${renderMs} ms`);
  if (renderMs > 1000) fail(`pool page took ${renderMs} ms (budget 1000 ms)`);
  const stat = (id) => page.textContent(`[data-stat="${id}"]`);
  if ((await stat('live')) !== String(cfg.live)) fail(`live bindings: ${await stat('live')} != ${cfg.live}`);
  if ((await stat('active')) !== String(cfg.numbers)) fail(`active: ${await stat('active')}`);
  if ((await page.locator('svg').count()) < 2) fail('charts missing');
  await page.waitForSelector('#sizing');
  await page.screenshot({ path: `${shots}/pool.png`, fullPage: true });

  step('quarantine needs a reason');
  const row = page.locator(`tr[data-number="${cfg.quarantine}"]`);
  await row.locator('[data-action=quarantine]').click();
  await page.waitForFunction(() => /reason/.test(document.querySelector('#numbers-msg')?.textContent || ''));

  step('quarantine a number');
  await page.fill('#reason', 'answer ratio collapsed; flagged as spam');
  await row.locator('[data-action=quarantine]').click();
  await page.waitForSelector(`tr[data-number="${cfg.quarantine}"] [data-state=quarantined]`);
  if ((await stat('quarantined')) !== '1') fail('quarantined count');

  step('the quarantined number stops receiving bindings');
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`${cfg.url}/v1/bindings`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${cfg.app}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ pool: cfg.pool, shipment_id: `E2E-Q${i}`, party_a: `+861390000${1000 + i}`, party_b: `+861370000${2000 + i}`, ttl_s: 600 }),
    });
    const b = await r.json();
    if (r.status !== 201) fail(`create: ${r.status} ${JSON.stringify(b)}`);
    if (b.number === cfg.quarantine) fail('a new binding landed on the quarantined number');
  }
  await page.reload();
  await page.waitForSelector('#numbers table');
  if ((await stat('live')) !== String(cfg.live + 4)) fail(`live after: ${await stat('live')}`);
  const qLive = await page.textContent(`tr[data-number="${cfg.quarantine}"] td:nth-child(4)`);
  if (qLive !== String(cfg.quarantine_live)) fail(`quarantined number's live bindings changed: ${qLive}`);

  step('shipment lookup as ops: masked, reveal refused');
  await page.click('a[href="#/shipment"]');
  await page.fill('#shipment-id', cfg.shipment);
  await page.click('form button[type=submit]');
  await page.waitForSelector('[data-party=a]');
  const masked = await page.textContent('[data-party=a]');
  if (!masked.includes('*') || masked === cfg.party_a) fail(`not masked: ${masked}`);
  const html = await page.content();
  if (html.includes(cfg.party_a.slice(1))) fail('party number in clear on the page');
  await page.screenshot({ path: `${shots}/shipment-masked.png`, fullPage: true });
  await page.fill('#reveal-reason', 'customer complaint C-17');
  await page.click('#reveal');
  await page.waitForSelector('#shipment .error');

  step('sign in as auditor and reveal with a reason');
  await page.click('#signout');
  await signIn(cfg.auditor);
  await page.click('a[href="#/shipment"]');
  await page.fill('#shipment-id', cfg.shipment);
  await page.fill('#reveal-reason', 'customer complaint C-17');
  await page.click('#reveal');
  await page.waitForFunction((n) => document.querySelector('[data-party=a]')?.textContent === n, cfg.party_a);
  await page.screenshot({ path: `${shots}/shipment-revealed.png`, fullPage: true });

  step('the audit log shows the quarantine and the reveal with their reasons');
  await page.click('a[href="#/audit"]');
  await page.waitForSelector('#audit table');
  const audit = await page.textContent('#audit');
  for (const s of ['number.quarantine', 'answer ratio collapsed; flagged as spam', 'shipment.read_unmasked', 'customer complaint C-17']) {
    if (!audit.includes(s)) fail(`audit log lacks ${s}`);
  }
  const dl = page.waitForEvent('download');
  await page.click('#csv');
  const file = await dl;
  if (!(await file.suggestedFilename()).endsWith('.csv')) fail('csv download');
  await page.screenshot({ path: `${shots}/audit.png`, fullPage: true });

  step('phone-sized screen');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${cfg.url}/ops/#/pool/${cfg.pool}`);
  await page.waitForSelector('#numbers table');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`page scrolls sideways on a phone by ${overflow}px`);
  await page.screenshot({ path: `${shots}/pool-phone.png`, fullPage: true });

  if (violations.length) fail(`CSP violations or page errors: ${violations.join(' | ')}`);
  if (offsite.length) fail(`requests left the relay: ${offsite.join(' ')}`);
  console.log('e2e: all steps passed');
} catch (e) {
  console.error(`e2e failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
