// Browser test of shhimd's dashboard, run by vm-tests/e2e_dashboard.sh in
// the test bed's client namespace (so the page's 127.0.0.1 is the agent's
// loopback). Real headless Debian Chromium, driven by playwright-core; no
// browser download. Prints one "ok"/"FAIL"/"SKIP" line per check and exits
// non-zero if any check failed.
//
// Environment (set by the shell test):
//   DASHBOARD_URL     http://127.0.0.1:PORT/
//   LIVE_BACKEND      backend key with steady traffic, e.g. 198.18.0.11:8080/tcp
//   KILL_BACKEND      backend key of the one to kill, e.g. 198.18.0.10:8080/tcp
//   KILL_PID          PID of that backend's server process (started by the shell test)
//   EXPECT_SERVICES   comma-separated policy service names the page must show
//   SCREENSHOT        where to save the full-page screenshot (PNG)
//   USER_DATA_DIR     a fresh, empty Chromium profile directory
//   EXPECT_EJECTION   "1" (default): the killed backend must show "ejected" within 2 s; "0": SKIP
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const url = env('DASHBOARD_URL');
const liveBackend = env('LIVE_BACKEND');
const killBackend = env('KILL_BACKEND');
const killPid = Number(env('KILL_PID'));
const expectServices = env('EXPECT_SERVICES', '').split(',').filter(Boolean);
const screenshot = env('SCREENSHOT');
const userDataDir = env('USER_DATA_DIR');
const expectEjection = env('EXPECT_EJECTION', '1') === '1';

const KILL_DEADLINE_MS = 2000;
let failures = 0;
let checks = 0;
const ok = (what) => { checks++; console.log(`ok    ${what}`); };
const fail = (what) => { checks++; failures++; console.log(`FAIL  ${what}`); };
const skip = (what) => console.log(`SKIP  ${what}`);
const check = (condition, what) => (condition ? ok(what) : fail(what));

// Waits for fn() (run in the page) to return a truthy value; returns it,
// or null at the deadline.
async function waitInPage(page, fn, arg, timeoutMs) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
    return await handle.jsonValue();
  } catch {
    return null;
  }
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1440, height: 1000 },
  // As the project's machines require: no sandbox as root, and nothing of
  // Chromium's own that would try to reach the network.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const consoleErrors = [];
const foreignRequests = [];
const failedRequests = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  const origin = new URL(url).origin;
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith('data:')) foreignRequests.push(request.url());
  });
  page.on('requestfailed', (request) => failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.url()}: HTTP ${response.status()}`);
  });

  const response = await page.goto(url, { waitUntil: 'load' });
  check(response && response.status() === 200, `GET ${url} answers 200`);
  check((await page.title()) === 'shhim dashboard', 'page title is "shhim dashboard"');

  // Services and backends render with live numbers.
  const firstData = await waitInPage(page, () => Number(document.body.dataset.refreshed || 0) > 0, null, 5000);
  check(firstData, 'dashboard drew data from the agent within 5 s');
  for (const name of expectServices) {
    check(await page.locator(`[data-service="${name}"]`).count() === 1, `policy service ${name} is shown`);
  }
  const liveRow = `[data-backend="${liveBackend}"]`;
  const killRow = `tr[data-backend="${killBackend}"]`;
  const before = await waitInPage(page, (sel) => {
    const row = document.querySelector(sel);
    return row && Number(row.dataset.requests) > 0 ? Number(row.dataset.requests) : null;
  }, `tr${liveRow}`, 5000);
  check(before !== null, `backend ${liveBackend} row shows requests (${before})`);
  const after = await waitInPage(page, ([sel, n]) => {
    const row = document.querySelector(sel);
    return row && Number(row.dataset.requests) > n ? Number(row.dataset.requests) : null;
  }, [`tr${liveRow}`, before ?? 0], 4000);
  check(after !== null, `its request count goes up while the page is open (${before} -> ${after})`);
  const rate = await page.locator(`tr${liveRow} [data-field="request-rate"]`).textContent();
  check(/^[0-9.]+\/s$/.test(rate ?? '') && parseFloat(rate) > 0, `its request rate is live (${rate})`);
  check(await page.locator(killRow).count() === 1, `backend ${killBackend} is shown`);
  const stateBefore = await page.locator(`${killRow} .state`).getAttribute('data-state');
  if (expectEjection) check(stateBefore === 'healthy', `backend ${killBackend} is healthy before the kill (${stateBefore})`);
  else check(['healthy', 'suspect', 'ejected', 'probing', 'drained'].includes(stateBefore),
    `backend state is one of healthy/suspect/ejected/probing/drained (${stateBefore})`);
  const poolBefore = await page.locator(killRow).getAttribute('data-pool');
  check(poolBefore === 'primary', `its pool is shown: primary (${poolBefore})`);
  for (const name of expectServices) {
    const pool = await page.locator(`[data-service="${name}"]`).getAttribute('data-active-pool');
    check(pool === 'primary', `service ${name} shows its active pool (${pool})`);
  }

  const flowBytes = await waitInPage(page, () => {
    const rows = [...document.querySelectorAll('#flows tr[data-flow]')];
    return rows.length && Number(rows[0].dataset.bytes) > 0 ? rows.length : null;
  }, null, 5000);
  check(flowBytes !== null, `top flows table lists flows with bytes (${flowBytes} rows)`);

  const points = await waitInPage(page, (sel) => {
    const canvas = document.querySelector(`.chart-card[data-backend="${sel}"] canvas[data-chart="latency"]`);
    return canvas && Number(canvas.dataset.points) >= 2 ? Number(canvas.dataset.points) : null;
  }, liveBackend, 8000);
  check(points !== null, `latency chart of ${liveBackend} draws points from the 1 s history (${points})`);

  const policyEvent = await waitInPage(page, () => document.querySelector('#events li[data-type="policy"]') !== null,
    null, 3000);
  check(policyEvent, 'live event feed shows the policy load');

  // Kill a backend: its ejection and its failures must show within 2 s.
  process.kill(killPid, 0);  // still running (throws if not)
  const killedAt = Date.now();
  process.kill(killPid, 'SIGKILL');
  if (expectEjection) {
    const ejected = await waitInPage(page, (sel) => document.querySelector(`${sel} .state`)?.dataset.state === 'ejected',
      killRow, KILL_DEADLINE_MS);
    const elapsed = Date.now() - killedAt;
    check(ejected, `killed backend shown as ejected within ${KILL_DEADLINE_MS} ms of the kill (${elapsed} ms)`);
    const why = await page.locator(`${killRow} [data-field="why"]`).textContent();
    check(/refused/.test(why ?? ''), `its "why" names the evidence (${why})`);
    const since = Number(await page.locator(killRow).getAttribute('data-since'));
    check(since * 1e-6 >= killedAt - 5000, `its "since" is the ejection, not the agent start (${since})`);
    const record = await waitInPage(page, (backend) =>
      document.querySelector(`#reroutes li[data-action="eject"][data-backend="${backend}"][data-after="ejected"]`)?.textContent ?? null,
    killBackend.split('/')[0], 2000);
    check(record !== null, `reroute timeline shows the audit record of the ejection (${record})`);
    const survivor = await page.locator(`tr${liveRow} .state`).getAttribute('data-state');
    check(survivor === 'healthy', `the surviving backend stays healthy (${survivor})`);
  } else {
    const state = await page.locator(`${killRow} .state`).getAttribute('data-state');
    skip(`killed backend shown as ejected within ${KILL_DEADLINE_MS} ms (EXPECT_EJECTION=0); state shown now: ${state}`);
  }
  const refused = await waitInPage(page, (sel) => {
    const row = document.querySelector(sel);
    return row && Number(row.dataset.recentRefused) > 0 ? Number(row.dataset.recentRefused) : null;
  }, killRow, KILL_DEADLINE_MS);
  const elapsed = Date.now() - killedAt;
  check(refused !== null, `killed backend shows recent refused connections (${refused} at ${elapsed} ms after the kill)`);
  const feedRefused = await waitInPage(page, (key) => [...document.querySelectorAll('#events li[data-type="failure"]')]
    .some((li) => li.textContent.includes('refused') && li.textContent.includes(key.split('/')[0])),
  killBackend, 1000);
  check(feedRefused, 'live event feed shows the refused connections');

  // Let one more refresh draw the failures everywhere, then keep the picture.
  await page.waitForTimeout(1200);
  await page.screenshot({ path: screenshot, fullPage: true });
  ok(`screenshot saved: ${screenshot}`);

  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);
  check(foreignRequests.length === 0,
    `no request leaves the agent's origin${foreignRequests.length ? ': ' + foreignRequests.join(' ') : ''}`);
  check(failedRequests.length === 0, `no failed request${failedRequests.length ? ': ' + failedRequests.join(' | ') : ''}`);
} catch (error) {
  fail(`browser test aborted: ${error.stack || error}`);
} finally {
  await context.close();
}

console.log(`dashboard browser test: ${checks - failures} of ${checks} checks passed`);
process.exit(failures === 0 && checks > 0 ? 0 : 1);
