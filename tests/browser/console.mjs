// Browser test of the analyst console: a real riskgate (--demo, fresh
// SQLite) filled by `riskgate simulate-traffic`, driven through Debian's
// chromium with playwright-core (no browser download). Every page visited
// is saved under target/screenshots/. Exits non-zero on the first failure.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.RISKGATE_BIN || join(root, 'target/debug/riskgate');
const shots = join(root, 'target/screenshots');
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'riskgate-console-'));
const token = 'rgadm_console_browser_test_token_0123456789';
const port = 20000 + Math.floor(Math.random() * 20000);
const base = `http://127.0.0.1:${port}`;
let server, browser, failed = 0, passed = 0;

function startServer() {
  return new Promise((ok, fail) => {
    server = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`,
      '--database-url', `sqlite://${join(work, 'rg.db')}`, '--admin-token', token],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => fail(new Error('riskgate did not print the demo key:\n' + out)), 60000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/(rg_live_[A-Za-z0-9_-]+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    server.stderr.on('data', () => {});
    server.on('exit', (code) => fail(new Error(`riskgate exited (${code}):\n${out}`)));
  });
}

async function admin(method, path, body) {
  const r = await fetch(base + path, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

let shot = 0;
async function snap(page, name, fullPage = true) {
  shot += 1;
  await page.screenshot({ path: join(shots, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage });
}

async function test(name, body) {
  try { await body(); passed += 1; console.log(`ok - ${name}`); }
  catch (err) { failed += 1; console.log(`not ok - ${name}\n${err.stack || err}`); }
}

async function signIn(context, email, password, name) {
  const page = await context.newPage();
  await page.goto(base + '/console/login');
  await snap(page, `${name}-sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL('**/console/overview');
  await snap(page, `${name}-overview`);
  return page;
}

const queueDepth = async (page) => parseInt((await page.locator('.head .muted').first().textContent()), 10);

try {
  const key = await startServer();
  const sim = spawnSync(bin, ['simulate-traffic', '--url', base, '--api-key', key, '--seed', '1',
    '--shoppers', '60', '--labels', 'none'], { encoding: 'utf8' });
  assert.equal(sim.status, 0, sim.stderr + sim.stdout);
  const pw = 'analyst-password-123';
  const created = await admin('POST', '/admin/subscribers/demo/users', { email: 'ann@example.com', role: 'analyst', password: pw });
  assert.equal(created.user.role, 'analyst');
  assert.equal(created.password, undefined, 'a given password is not echoed');
  await admin('POST', '/admin/subscribers', { id: 'other', name: 'Other shop' });
  await admin('POST', '/admin/subscribers/other/users', { email: 'bob@other.example', role: 'admin', password: 'other-password-123' });
  await admin('POST', '/admin/subscribers/demo/users', { email: 'ada@example.com', role: 'admin', password: 'admin-password-123' });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // playwright gives every launch a fresh temporary user-data-dir of its own
    // (it refuses a --user-data-dir argument here).
  });
  const ann = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await signIn(ann, 'ann@example.com', pw, 'analyst');
  let decisionUrl;

  await test('the overview draws its charts', async () => {
    assert.ok(await page.locator('svg.chart rect').count() > 0, 'stacked bars');
    assert.match(await page.textContent('main'), /Scoring p99/);
  });

  await test('the review queue is worked from the keyboard', async () => {
    await page.goto(base + '/console/review');
    await snap(page, 'review-queue');
    const before = await queueDepth(page);
    assert.ok(before >= 2, `review decisions to work: ${before}`);
    await page.keyboard.press('j');
    await page.keyboard.press('k');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('a')]);
    assert.equal(await queueDepth(page), before - 1, 'approve took one off the queue');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('d')]);
    assert.equal(await queueDepth(page), before - 2, 'decline took one off the queue');
    await snap(page, 'review-after-keys');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('o')]);
    assert.match(page.url(), /\/console\/decisions\/dec_/);
    decisionUrl = page.url();
  });

  await test('a decision explains its score and takes a label', async () => {
    await snap(page, 'decision');
    const text = await page.textContent('main');
    assert.match(text, /Device risk/);
    assert.match(text, /Score \(clamped to 0–1\)/);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Label fraud' }).click()]);
    assert.equal(await page.locator('.head .tag.l-fraud').count(), 1, 'labelled fraud');
    await snap(page, 'decision-labelled');
  });

  await test('a card is blocked from the decision in one step, and the Lists page shows it', async () => {
    await page.goto(decisionUrl);
    const form = page.locator('#lists form.add').filter({ has: page.locator('input[name=kind][value=card]') });
    assert.equal(await form.count(), 1, 'the decision offers its card');
    assert.match(await form.locator('select').textContent(), /blocked_cards \(new list\)/);
    await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Add card' }).click()]);
    assert.equal(page.url(), decisionUrl, 'back on the decision');
    assert.match(await page.locator('#lists').textContent(), /on blocked_cards/);
    await snap(page, 'decision-card-blocked');
    await page.getByRole('link', { name: 'Lists', exact: true }).click();
    await page.waitForURL('**/console/lists');
    await snap(page, 'lists');
    const row = page.locator('table.list tbody tr').filter({ hasText: 'blocked_cards' });
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('td.num').textContent()).trim(), '1');
    await row.getByRole('link', { name: 'blocked_cards' }).click();
    await page.waitForURL('**/console/lists/blocked_cards');
    await snap(page, 'list-blocked-cards');
    const id = decisionUrl.split('/').pop();
    const entry = page.locator('table.entries tbody tr');
    assert.equal(await entry.count(), 1);
    assert.match(await entry.textContent(), new RegExp(`from decision ${id}`));
    assert.match(await entry.textContent(), /ann@example\.com/);
    // Expire it now: it stays, marked expired.
    await Promise.all([page.waitForNavigation(), entry.getByRole('button', { name: 'Expire now' }).click()]);
    assert.equal(await page.locator('table.entries tr.expired').count(), 1);
    await snap(page, 'list-entry-expired');
  });

  await test('l focuses the add-to-list control on the review queue', async () => {
    await page.goto(base + '/console/review');
    await page.keyboard.press('l');
    assert.equal(await page.evaluate(() => document.activeElement.tagName), 'SELECT');
    assert.equal(await page.evaluate(() => document.activeElement.closest('[data-hook="add-to-list"]') !== null), true);
    await snap(page, 'review-add-to-list');
    const target = await page.evaluate(() => document.activeElement.value);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    assert.match(page.url(), /\/console\/review$/, 'Enter added it and came back');
    const [, list] = target.split(':');
    await page.goto(`${base}/console/lists/${list}`);
    await snap(page, 'list-after-review');
    assert.match(await page.locator('table.entries').textContent(), /from decision dec_/);
  });

  await test('a customer is marked blocked', async () => {
    await page.goto(decisionUrl);
    await page.locator('main a[href^="/console/customers/"]').first().click();
    await page.waitForURL('**/console/customers/**');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Block' }).click()]);
    assert.equal(await page.locator('.head .tag.s-blocked').count(), 1);
    await snap(page, 'customer-blocked');
  });

  await test('search, audit log and decisions pages render', async () => {
    await page.goto(base + '/console/decisions?action=review');
    await snap(page, 'decisions-review');
    assert.ok(await page.locator('table.list tbody tr').count() > 0);
    await page.goto(base + '/console/audit');
    await snap(page, 'audit');
    assert.match(await page.textContent('main'), /customer\.status/);
    assert.match(await page.textContent('main'), /decision\.label/);
  });

  await test('an analyst cannot reach admin pages (403)', async () => {
    for (const path of ['/console/users', '/console/rules', '/console/rules/draft', '/console/subscribers']) {
      const r = await page.goto(base + path);
      assert.equal(r.status(), 403, path);
    }
    await snap(page, 'forbidden');
  });

  await test('a forged cross-site POST is refused', async () => {
    const id = decisionUrl.split('/').pop();
    // No token, a wrong token, and the right token from another origin.
    const csrf = await page.goto(decisionUrl).then(() => page.locator('input[name=csrf]').first().inputValue());
    for (const [data, headers] of [
      ['label=legit', {}],
      ['label=legit&csrf=forged', {}],
      [`label=legit&csrf=${csrf}`, { origin: 'https://evil.example' }],
      [`label=legit&csrf=${csrf}`, { 'sec-fetch-site': 'cross-site' }],
    ]) {
      const r = await ann.request.post(`${base}/console/decisions/${id}/label`, {
        data, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, maxRedirects: 0,
      });
      assert.equal(r.status(), 403, JSON.stringify(headers) + data);
    }
    // A real form on another origin: the SameSite cookie is not sent, nothing changes.
    const evil = await ann.newPage();
    await evil.setContent(`<form method="post" action="${base}/console/decisions/${id}/label"><input name="label" value="legit"><button>go</button></form>`);
    await Promise.all([evil.waitForNavigation(), evil.click('button')]);
    await snap(evil, 'cross-site-form');
    await page.reload();
    assert.equal(await page.locator('.head .tag.l-fraud').count(), 1, 'still labelled fraud');
  });

  await test("subscriber B's user cannot open A's decision (404)", async () => {
    const other = await browser.newContext();
    const bob = await signIn(other, 'bob@other.example', 'other-password-123', 'other-subscriber');
    const r = await bob.goto(decisionUrl);
    assert.equal(r.status(), 404);
    await snap(bob, 'other-tenant-404');
    await other.close();
  });

  await test('an admin drafts a rule, backtests it, runs it as shadow and publishes it', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await signIn(ctx, 'ada@example.com', 'admin-password-123', 'admin');
    await p.getByRole('link', { name: 'Rules', exact: true }).click();
    await p.waitForURL('**/console/rules');
    await snap(p, 'rules-overview');
    assert.match(await p.textContent('main'), /default rule pack/);
    await p.getByRole('link', { name: 'New draft' }).click();
    await p.waitForURL('**/console/rules/draft');
    // The editor starts from the live rules and ends with empty rows.
    const rows = await p.locator('fieldset.rule').count();
    assert.ok(rows > 2, `rows: ${rows}`);
    const i = rows - 2;
    await p.fill(`#r${i}_name`, 'Big basket');
    await p.fill(`#r${i}_weight`, '0.5');
    await p.selectOption(`#r${i}_action`, 'block');
    await p.fill('#note', 'block big baskets');
    // Validated as typed: a broken expression shows its error, fixing it clears it.
    await p.locator(`#r${i}_expression`).pressSequentially('amount >', { delay: 30 });
    const error = p.locator(`#r${i}_errors`);
    await error.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await error.textContent(), /does not compile/);
    assert.equal(await p.locator(`#r${i}_expression`).getAttribute('aria-invalid'), 'true');
    await p.locator(`fieldset[data-row="${i}"]`).scrollIntoViewIfNeeded();
    await snap(p, 'rules-draft-error', false);
    await p.locator(`#r${i}_expression`).pressSequentially(' 400', { delay: 30 });
    await error.waitFor({ state: 'hidden', timeout: 10000 });
    assert.equal(await p.locator('fieldset.rule.bad').count(), 0, 'no rule is marked');
    await snap(p, 'rules-draft-fixed', false);
    await Promise.all([p.waitForURL('**/console/rules/versions/*'), p.getByRole('button', { name: 'Save draft' }).click()]);
    const versionUrl = p.url();
    const version = Number(versionUrl.split('/').pop());
    assert.equal(await p.locator('.head .tag.r-draft').count(), 1, 'a draft');
    assert.match(await p.textContent('main'), /Big basket/);
    assert.ok(await p.locator('table.diff .tag.d-added').count() >= 1, 'the diff shows the added rule');
    await snap(p, 'rules-version');

    await Promise.all([p.waitForURL('**/console/rules/backtests/bt_*'), p.getByRole('button', { name: 'Start backtest' }).click()]);
    await snap(p, 'rules-backtest-running');
    await p.locator('.head .tag.b-done').waitFor({ timeout: 60000 });
    const result = await p.textContent('main');
    assert.match(result, /Live and candidate, side by side/);
    assert.match(result, /Blocked against the labels/);
    await snap(p, 'rules-backtest-done');

    await p.goto(versionUrl);
    await Promise.all([p.waitForURL('**/console/rules'), p.getByRole('button', { name: 'Run as shadow' }).click()]);
    assert.match(await p.textContent('main'), new RegExp(`Version ${version} runs beside the live version`));
    await snap(p, 'rules-shadow');
    await p.goto(base + '/console/rules/stats');
    assert.match(await p.textContent('main'), new RegExp(`Shadow: v${version}`));
    await snap(p, 'rules-stats');

    await p.goto(versionUrl);
    await Promise.all([p.waitForURL('**/publish'), p.getByRole('link', { name: 'Publish…' }).click()]);
    await snap(p, 'rules-publish-confirm');
    await Promise.all([p.waitForURL(versionUrl), p.getByRole('button', { name: `Yes, publish version ${version}` }).click()]);
    assert.equal(await p.locator('.head .tag.r-live').count(), 1, 'live');
    await snap(p, 'rules-published');
    const { versions } = await admin('GET', '/admin/subscribers/demo/rules/versions');
    assert.equal(versions.find((v) => v.version === version).status, 'live');
    await ctx.close();
  });

  await test('signing out ends the session', async () => {
    const cookie = (await ann.cookies()).find((c) => c.name === 'rg_session');
    assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', 'HttpOnly, SameSite=Strict');
    await page.goto(base + '/console/overview');
    await Promise.all([page.waitForURL('**/console/login'), page.getByRole('button', { name: 'Sign out' }).click()]);
    await snap(page, 'signed-out');
    const r = await fetch(base + '/console/overview', { headers: { cookie: `rg_session=${cookie.value}` }, redirect: 'manual' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/console/login');
  });
} catch (err) {
  failed += 1;
  console.log(`not ok - setup\n${err.stack || err}`);
} finally {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
