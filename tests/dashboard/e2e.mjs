// End-to-end check of the luas dashboard in headless Chromium.
//
//   node tests/dashboard/e2e.mjs http://127.0.0.1:PORT [SERVICE]
//
// Run by tests/dashboard.rs against a running luas whose service (default
// `web`) has a stable and a canary group with a canary weight above 0 and
// some traffic. It checks that the page loads under its Content-Security-
// Policy without errors, that the service renders with its groups and
// endpoints, that the requests/s chart gets new points between two polls,
// and that Roll back, confirmed in the page's dialog, answers with the
// success banner showing canary 0. The Rust test then checks the weight
// through the API. Every wait is bounded; on failure it prints what went
// wrong and exits 1. Chromium: $CHROMIUM, else /usr/bin/chromium.
//
// With LUAS_E2E_TOKEN set (luas runs with admin.token_file holding it), the
// rollback must first answer 401: the page asks for the token, is given a
// wrong one, asks again, and succeeds with the right one, kept in
// sessionStorage.
import { chromium } from 'playwright-core';

const [admin, service = 'web'] = process.argv.slice(2);
const token = process.env.LUAS_E2E_TOKEN || '';
if (!admin) {
  console.error('usage: node e2e.mjs ADMIN_URL [SERVICE]');
  process.exit(2);
}

const started = Date.now();
const log = (message) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);

// Fails the run with a clear message.
class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

const problems = []; // console errors, CSP violations, failed requests
let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in a container needs --no-sandbox; the rest keeps Chromium off
    // the network it has no business with.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30_000,
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  const testid = (id) => page.locator(`[data-testid="${id}"]`);

  // 1. The page loads and renders the service.
  const response = await page.goto(admin, { waitUntil: 'load', timeout: 15_000 });
  check(response && response.ok(), `GET ${admin} answered ${response && response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  check(csp.includes("default-src 'self'"), `the page came without its Content-Security-Policy (got "${csp}")`);
  await testid(`service-${service}`).waitFor({ state: 'visible', timeout: 15_000 })
    .catch(() => { throw new Failure(`service ${service} did not render within 15 s`); });
  for (const group of ['stable', 'canary']) {
    await testid(`weight-${service}-${group}`).waitFor({ timeout: 5_000 })
      .catch(() => { throw new Failure(`no weight input for group ${group}`); });
  }
  const canaryBefore = await testid(`weight-${service}-canary`).inputValue();
  check(Number(canaryBefore) > 0, `expected a canary weight above 0 before the rollback, the page shows "${canaryBefore}"`);
  const endpointRows = await page.locator(`[data-testid^="endpoint-${service}-"]`).count();
  check(endpointRows >= 2, `expected at least 2 endpoint rows, found ${endpointRows}`);
  const refresh = await testid('refresh-state').getAttribute('data-state');
  check(refresh === 'live', `the header says the page is "${refresh}", not live`);
  log(`page loaded: ${service} with ${endpointRows} endpoints, canary weight ${canaryBefore}`);

  // 2. The charts update without a reload: the requests/s chart gets a
  //    newer point, with traffic on it.
  const chart = testid(`chart-rps-${service}`);
  await page.waitForFunction((id) => {
    const box = document.querySelector(`[data-testid="${id}"]`);
    return box && Number(box.dataset.points) >= 1 && box.querySelector('canvas');
  }, `chart-rps-${service}`, { timeout: 15_000, polling: 100 })
    .catch(() => { throw new Failure('the requests/s chart was not drawn within 15 s'); });
  const first = { points: Number(await chart.getAttribute('data-points')), last: Number(await chart.getAttribute('data-last-t')) };
  await page.waitForFunction(([id, last]) => {
    const box = document.querySelector(`[data-testid="${id}"]`);
    return box && Number(box.dataset.lastT) > last;
  }, [`chart-rps-${service}`, first.last], { timeout: 10_000, polling: 100 })
    .catch(() => { throw new Failure(`the requests/s chart did not update within 10 s (still ${first.points} points, last at ${first.last})`); });
  const second = { points: Number(await chart.getAttribute('data-points')), last: Number(await chart.getAttribute('data-last-t')) };
  log(`requests/s chart updated: ${first.points} -> ${second.points} points, last point ${first.last} -> ${second.last}`);
  // Traffic shows: the latest requests/s of the stable group is above 0
  // (within 15 s: the first samples may predate the load).
  await page.waitForFunction((id) => {
    const cell = document.querySelector(`[data-testid="${id}"]`);
    return cell && Number.parseFloat(cell.textContent.replace(/,/g, '')) > 0;
  }, `group-rps-${service}-stable`, { timeout: 15_000, polling: 200 })
    .catch(() => { throw new Failure('the stable group shows no requests/s although the test sends traffic'); });
  for (const kind of ['p99', 'errors']) {
    const points = Number(await testid(`chart-${kind}-${service}`).getAttribute('data-points'));
    check(points >= 1, `the ${kind} chart has no points`);
  }
  await page.locator(`[data-testid^="dist-${service}-"] svg rect`).first().waitFor({ timeout: 15_000 })
    .catch(() => { throw new Failure('no latency distribution was drawn within 15 s'); });
  log('charts, tables and latency distributions drawn');

  // 3. Roll back: a confirmation first, cancelling changes nothing.
  await testid(`rollback-${service}`).click();
  const dialog = testid('confirm-dialog');
  await dialog.waitFor({ state: 'visible', timeout: 5_000 })
    .catch(() => { throw new Failure('Roll back did not open the confirmation dialog'); });
  const consequences = await dialog.innerText();
  check(/canary\s+\d+\s+→\s+0/.test(consequences), `the dialog does not say the canary goes to 0:\n${consequences}`);
  await testid('confirm-no').click();
  await dialog.waitFor({ state: 'hidden', timeout: 5_000 });
  check(await testid(`banner-${service}`).isHidden(), 'cancelling the rollback still showed a result');

  await testid(`rollback-${service}`).click();
  await dialog.waitFor({ state: 'visible', timeout: 5_000 });
  await testid('confirm-yes').click();
  if (token) {
    // The change answers 401: the page asks for the token.
    const tokenDialog = testid('token-dialog');
    await tokenDialog.waitFor({ state: 'visible', timeout: 10_000 })
      .catch(() => { throw new Failure('a 401 did not make the page ask for the token'); });
    await testid('token-input').fill('not-the-token');
    await testid('token-save').click();
    await page.waitForFunction(() => {
      const dialog = document.querySelector('[data-testid="token-dialog"]');
      return dialog && dialog.open && /refused/.test(document.getElementById('token-reason').textContent);
    }, null, { timeout: 10_000, polling: 100 })
      .catch(() => { throw new Failure('a wrong token did not make the page ask again'); });
    await testid('token-input').fill(token);
    await testid('token-save').click();
    log('token asked for, a wrong one refused, the right one given');
  }
  const banner = testid(`banner-${service}`);
  await banner.waitFor({ state: 'visible', timeout: 10_000 })
    .catch(() => { throw new Failure('no result banner within 10 s of confirming the rollback'); });
  const kind = await banner.getAttribute('data-kind');
  const text = await banner.innerText();
  check(kind === 'ok', `the rollback failed in the page: ${text}`);
  check(/canary 0/.test(text), `the success banner does not show canary 0: ${text}`);
  log(`rolled back: ${text.replace(/\s*×\s*$/, '')}`);

  // The weight input follows the new weight at the next refresh.
  await page.waitForFunction((id) => document.querySelector(`[data-testid="${id}"]`)?.value === '0',
    `weight-${service}-canary`, { timeout: 5_000, polling: 100 })
    .catch(() => { throw new Failure('the canary weight input did not show 0 after the rollback'); });

  if (token) {
    const kept = await page.evaluate(() => sessionStorage.getItem('luas.admin-token'));
    check(kept === token, 'the token was not kept in sessionStorage');
    check(await testid('forget-token').isVisible(), 'no "Forget token" button while a token is kept');
  }

  // 401s are expected in token mode, as are the browser's lines about them.
  const relevant = problems.filter((p) => !(token && /\b401\b/.test(p)));
  check(relevant.length === 0, `the page reported problems:\n  ${relevant.join('\n  ')}`);
  log('passed');
} catch (error) {
  const message = error instanceof Failure ? error.message : (error && error.stack) || String(error);
  console.error(`dashboard e2e FAILED: ${message}`);
  if (problems.length) console.error(`page problems seen:\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
