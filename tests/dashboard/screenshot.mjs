// Screenshots the luas dashboard once its charts have data.
//
//   node tests/dashboard/screenshot.mjs http://127.0.0.1:9901 docs/dashboard.png [MIN_POINTS]
//
// Waits (at most 60 s) until every requests/s chart has MIN_POINTS points
// (default 2) and then writes a full-page PNG. Chromium: $CHROMIUM, else
// /usr/bin/chromium (Debian's package).
import { chromium } from 'playwright-core';

const [url, out, minPointsArg] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: node screenshot.mjs ADMIN_URL OUT.png [MIN_POINTS]');
  process.exit(2);
}
const minPoints = Number(minPointsArg || 2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  timeout: 30_000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  page.setDefaultTimeout(60_000);
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction((min) => {
    const charts = document.querySelectorAll('[data-testid^="chart-rps-"]');
    return charts.length > 0 && Array.from(charts).every((c) => Number(c.dataset.points) >= min)
      && document.querySelectorAll('.dist-svg').length > 0;
  }, minPoints, { timeout: 60_000, polling: 250 }).catch(() => {
    throw new Error(`the charts did not reach ${minPoints} points within 60 s: is luas at ${url} taking traffic?`);
  });
  // Let one more poll land so the tables and legends are current.
  await page.waitForTimeout(1200);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} catch (error) {
  console.error(`screenshot FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
