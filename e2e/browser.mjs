// Launches Debian's Chromium (CHROMIUM_BIN, default /usr/bin/chromium)
// through playwright-core, headless, with a fresh profile that is removed
// on close.

import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { within } from './harness.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/**
 * noChromium is why the browser tests skip, or false when they run: they
 * skip on a machine without Chromium, with one line saying how to enable
 * them, except under CI=true, where they are required (and launch fails).
 */
export const noChromium =
  !existsSync(CHROMIUM) && process.env.CI !== 'true'
    ? `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN) to run the browser tests`
    : false;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** launch returns { context, page, errors, close }; errors collects the page's console errors and uncaught exceptions. */
export async function launch({ viewport = { width: 1400, height: 900 } } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  }
  const profile = await mkdtemp(path.join(tmpdir(), 'pulse-e2e-chromium-'));
  let context;
  try {
    context = await within(
      chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport }),
      `Chromium (${CHROMIUM}) to start`,
      30_000,
    );
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return {
    context,
    page,
    errors,
    close: async () => {
      try {
        await within(context.close(), 'Chromium to close', 15_000);
      } finally {
        await rm(profile, { recursive: true, force: true, maxRetries: 5 }).catch((err) =>
          process.emitWarning(`could not remove Chromium's profile ${profile}: ${err.message}`),
        );
      }
    },
  };
}

/**
 * servePage serves files (path to content; `/` is HTML, the rest
 * JavaScript) over HTTP on 127.0.0.1: a page on an origin of its own, which
 * the pulse server must allow with --allowed-origins. It returns { origin,
 * close }.
 */
export async function servePage(files) {
  const srv = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (!(pathname in files)) return res.writeHead(404).end();
    const type = pathname === '/' ? 'text/html' : 'text/javascript';
    res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8` }).end(files[pathname]);
  });
  await new Promise((resolve, reject) => srv.listen(0, '127.0.0.1', resolve).on('error', reject));
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    close: () =>
      within(
        new Promise((resolve) => {
          srv.close(resolve);
          srv.closeAllConnections(); // the browser's keep-alive connections
        }),
        'the page server to close',
      ),
  };
}
