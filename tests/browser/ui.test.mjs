// The web UI in a real browser: headless Chromium (Debian's) driven by playwright-core, against
// the real `ludex serve` binary over a fresh data directory. The steps share one server and one
// signed-in browser context and run in order, like a person using the UI.
//
//   LUDEX_BIN (default target/debug/ludex)   the binary under test
//   CHROMIUM  (default /usr/bin/chromium)    the browser
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = process.env.LUDEX_BIN || path.join(root, 'target/debug/ludex');
const shots = path.join(root, 'target/test-artifacts/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const MOBILE = { width: 375, height: 800 };
// The box of each cover size in CSS pixels (crates/ludex/src/covers: Size::bounds).
const COVER_BOXES = { thumb: [90, 128], small: [264, 374] };

let dataDir;
let server;
let base;
let key;
let browser;
let context;
let page;
const pageErrors = [];
// Celeste as it was before the CSV import, which a later step reverts.
let celesteBeforeImport;

function ludex(...args) {
  return ludexIn(dataDir, ...args);
}

function ludexIn(dir, ...args) {
  return execFileSync(binary, ['--data-dir', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Starts `ludex serve` on a free port; resolves with its address from the first stdout line. */
function serve(dir = dataDir) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['--data-dir', dir, 'serve', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`ludex serve did not start: ${stderr}`)), 20000);
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = stdout.match(/ludex is serving (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`ludex serve exited with ${code}: ${stderr}`)); });
  });
}

/** A new browser context signed in with `apiKey` on the server at `url`. */
async function signedIn(url, apiKey, viewport = DESKTOP) {
  const ctx = await browser.newContext({ baseURL: url, viewport });
  const p = await ctx.newPage();
  p.on('pageerror', (error) => pageErrors.push(error));
  await p.goto('/ui/sign-in');
  await p.getByLabel('API key').fill(apiKey);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('button', { name: 'Sign out' }).waitFor();
  return { ctx, page: p };
}

/** The game as the API has it. */
async function stored(target, id) {
  return (await target.request.get(`/games/${encodeURIComponent(id)}`)).json();
}

/** The grid cell of a game's field. */
function cell(target, id, field) {
  return target.locator(`#grid tr[data-id="${id}"] [data-field="${field}"]`);
}

/** A `width`×`height` PNG drawn by the browser: a cover the size of a scanned box. */
async function drawnPng(target, width, height) {
  const dataUrl = await target.evaluate(([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d');
    const gradient = g.createLinearGradient(0, 0, w, h);
    gradient.addColorStop(0, '#1d3557');
    gradient.addColorStop(1, '#e63946');
    g.fillStyle = gradient;
    g.fillRect(0, 0, w, h);
    for (let i = 0; i < 300; i += 1) {
      g.fillStyle = `hsl(${(i * 37) % 360}, 70%, 55%)`;
      g.fillRect((i * 97) % w, (i * 61) % h, 30 + (i % 50), 30 + (i % 70));
    }
    return canvas.toDataURL('image/png');
  }, [width, height]);
  return Buffer.from(dataUrl.split(',')[1], 'base64');
}

/**
 * The covers `target` shows, once each has loaded: the size it is for, the URL the browser
 * chose from its srcset, and its natural size (in CSS pixels: a `2x` candidate's pixels are
 * halved). Every cover image the page fetched is in `fetched`.
 */
async function shownCovers(target) {
  const images = target.locator('img.cover-image');
  for (const image of await images.all()) await image.scrollIntoViewIfNeeded();
  await target.waitForFunction(() => [...document.querySelectorAll('img.cover-image')]
    .every((img) => img.complete && img.naturalWidth > 0));
  return target.evaluate(() => ({
    dpr: window.devicePixelRatio,
    shown: [...document.querySelectorAll('img.cover-image')].map((img) => ({
      size: img.dataset.size, url: img.currentSrc, width: img.naturalWidth, height: img.naturalHeight,
    })),
    fetched: performance.getEntriesByType('resource')
      .filter((entry) => entry.initiatorType === 'img' && entry.name.includes('/cover'))
      .map((entry) => entry.name),
  }));
}

/** Asserts that every cover on `target` came in its size at the screen's density, never as the original. */
async function assertCoversInTheirSizes(target, expectedSize) {
  const { dpr, shown, fetched } = await shownCovers(target);
  assert.ok(shown.length > 0, `no cover on ${target.url()}`);
  for (const cover of shown) {
    assert.equal(cover.size, expectedSize, target.url());
    const [boxWidth, boxHeight] = COVER_BOXES[cover.size];
    const url = new URL(cover.url);
    assert.equal(url.searchParams.get('size'), cover.size, cover.url);
    assert.equal(url.searchParams.get('dpr') ?? '1', String(dpr), `${cover.url} at ${dpr}x`);
    // The pixels fetched: the candidate's density (the screen's, checked above) times its natural size.
    const [width, height] = [cover.width * dpr, cover.height * dpr];
    const what = `${cover.url}: ${width}×${height} pixels for a ${boxWidth}×${boxHeight} box at ${dpr}x`;
    assert.ok(width <= boxWidth * dpr && height <= boxHeight * dpr, `${what}: too many`);
    assert.ok(width >= boxWidth * dpr - 1 || height >= boxHeight * dpr - 1, `${what}: too few`);
  }
  assert.ok(fetched.length > 0);
  for (const name of fetched) assert.match(name, /[?&]size=(thumb|small)\b/, `${name} is an original`);
}

/** Saves the page at desktop and at mobile width. */
async function screenshot(name, target = page) {
  await target.setViewportSize(DESKTOP);
  await target.screenshot({ path: path.join(shots, `${name}-desktop.png`), fullPage: true });
  await target.setViewportSize(MOBILE);
  await target.screenshot({ path: path.join(shots, `${name}-mobile.png`), fullPage: true });
  await target.setViewportSize(DESKTOP);
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'ludex-ui-'));
  key = ludex('keys', 'create', '--name', 'ui-test').trim();
  const generated = path.join(dataDir, 'generated.ndjson');
  ludex('generate', '--count', '60', '-o', generated);
  ludex('ingest', generated);
  ludex('ingest', path.join(root, 'examples/games.ndjson'));
  const started = await serve();
  server = started.child;
  base = started.url;
  // Playwright gives every launch a fresh, temporary --user-data-dir of its own.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ baseURL: base, viewport: DESKTOP });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error));
});

after(async () => {
  await browser?.close();
  if (server) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the ludex web UI', () => {
  test('the catalog can be read with JavaScript disabled', async () => {
    const plain = await browser.newContext({ baseURL: base, javaScriptEnabled: false, viewport: DESKTOP });
    const noJs = await plain.newPage();
    await noJs.goto('/?platform=PC&sort=title');
    assert.equal(await noJs.locator('table.games tbody tr').count() > 0, true);
    const titles = await noJs.locator('table.games tbody th a').allTextContents();
    assert.deepEqual(titles, [...titles].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' })));
    await noJs.getByRole('link', { name: 'Next page' }).click();
    assert.match(noJs.url(), /cursor=/);
    await plain.close();
  });

  test('the catalog lists games and is usable from the keyboard', async () => {
    await page.goto('/');
    assert.equal(await page.locator('table.games tbody tr').count(), 20);
    await screenshot('catalog');
    if (process.env.LUDEX_UPDATE_SCREENSHOTS) copyFileSync(path.join(shots, 'catalog-desktop.png'), path.join(root, 'docs/screenshots/catalog.png'));
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement.id === 'main', null, { timeout: 2000 });
  });

  test('signing in exchanges the key for an HttpOnly, SameSite=Strict session cookie', async () => {
    await page.goto('/ui/sign-in');
    await screenshot('sign-in');
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('the API key is not valid').waitFor();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const session = (await context.cookies()).find((c) => c.name === 'ludex_session');
    assert.ok(session, 'a session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
  });

  test('creating a game shows the API\'s field errors, then saves', async () => {
    await page.goto('/ui/games/new');
    await page.getByLabel('Title').fill('Lantern Quest');
    await page.getByLabel('Platforms').fill('PC\nNintendo Switch');
    // One entry a line: a comma inside an entry stays in it.
    await page.getByLabel('Genres').fill('Action, Adventure\nPuzzle');
    await page.getByLabel('Release date').fill('2024-02-30');
    await page.getByLabel('Rating').fill('11.5');
    await page.getByRole('button', { name: 'Create game' }).click();
    const ratingError = page.locator('#g-rating-error');
    await ratingError.waitFor();
    assert.equal(await ratingError.textContent(), 'rating: 11.5 is above the maximum 10');
    assert.equal(await page.getByLabel('Rating').getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#g-release_date-error').textContent(), /^release_date: /);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'form-errors');
    await screenshot('game-form-errors');
    await page.getByLabel('Rating').fill('8.5');
    await page.getByLabel('Release date').fill('2024-02-29');
    await page.getByRole('button', { name: 'Create game' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024');
    assert.equal(await page.locator('h1').textContent(), 'Lantern Quest');
    const saved = await (await page.request.get('/games/lantern-quest-2024')).json();
    assert.deepEqual(saved.platforms, ['PC', 'Nintendo Switch']);
    assert.deepEqual(saved.genres, ['Action, Adventure', 'Puzzle']);
  });

  test('editing a game saves it', async () => {
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024/edit');
    await page.getByLabel('Developer').fill('Night Owl Studio');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024');
    await page.locator('dd', { hasText: 'Night Owl Studio' }).waitFor();
  });

  test('a conflicting save from another page shows both versions and lets you choose', async () => {
    const other = await context.newPage();
    await page.goto('/ui/games/lantern-quest-2024/edit');
    await other.goto('/ui/games/lantern-quest-2024/edit');
    await other.getByLabel('Rating').fill('7');
    await other.getByRole('button', { name: 'Save changes' }).click();
    await other.waitForURL('**/ui/games/lantern-quest-2024');

    await page.getByLabel('Rating').fill('6.5');
    await page.getByRole('button', { name: 'Save changes' }).click();
    const conflict = page.locator('#conflict');
    await conflict.waitFor();
    const ratingRow = conflict.locator('tr', { hasText: 'Rating' });
    assert.deepEqual(await ratingRow.locator('td').allTextContents(), ['6.5', '7']);
    await screenshot('game-conflict');
    await page.getByRole('button', { name: 'Keep my version' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024');
    await page.getByText('6.5 / 10').waitFor();
    await other.close();
  });

  test('a cover image is previewed, then uploaded', async () => {
    const png = await drawnPng(page, 1200, 1800);
    await page.locator('#cover-file').setInputFiles({ name: 'cover.png', mimeType: 'image/png', buffer: png });
    await page.locator('#cover-preview').waitFor();
    await page.getByRole('button', { name: 'Upload cover' }).click();
    await page.getByText('Cover uploaded.').waitFor();
    assert.match(await page.locator('#cover-image img').getAttribute('src'), /\/games\/lantern-quest-2024\/cover\?size=small&v=[0-9a-f]{16}$/);
    await assertCoversInTheirSizes(page, 'small');
    const cover = await page.request.get('/games/lantern-quest-2024/cover');
    assert.equal(cover.headers()['content-type'], 'image/png');
    assert.equal((await cover.body()).length, png.length, 'the original stays available');
    await screenshot('game');
  });

  test('covers load in their sizes: thumb in the grid and the catalog, small on the game page, 2x on dense screens', async () => {
    await page.goto('/');
    await page.locator('#grid tr[data-id="lantern-quest-2024"] img.cover-image').waitFor();
    await assertCoversInTheirSizes(page, 'thumb');
    await page.goto('/ui/games/lantern-quest-2024');
    await assertCoversInTheirSizes(page, 'small');
    const dense = await browser.newContext({ baseURL: base, viewport: DESKTOP, deviceScaleFactor: 2 });
    const visitor = await dense.newPage();
    visitor.on('pageerror', (error) => pageErrors.push(error));
    const responses = [];
    visitor.on('response', (response) => {
      if (response.url().includes('/cover')) responses.push(response);
    });
    await visitor.goto('/');
    await assertCoversInTheirSizes(visitor, 'thumb');
    await visitor.goto('/ui/games/lantern-quest-2024');
    await assertCoversInTheirSizes(visitor, 'small');
    for (const response of responses) {
      assert.equal(response.headers()['content-type'], 'image/webp', response.url());
      assert.equal(response.headers()['cache-control'], 'public, max-age=31536000, immutable', response.url());
    }
    await dense.close();
  });

  test('the history lists every change with its author and restores a version with one click', async () => {
    await page.reload();
    const versions = page.locator('#history ol.history > li');
    assert.equal(await versions.count(), 5);
    assert.match(await versions.first().innerText(), /Version 5 · .* · by \S+ · current/);
    const second = page.locator('#history li[data-version="2"]');
    assert.match(await second.locator('ul.changes').innerText(), /developer: Night Owl Studio/);
    const fourth = page.locator('#history li[data-version="4"]');
    assert.match(await fourth.locator('ul.changes').innerText(), /rating: 7(\.0)? → 6\.5/);
    assert.equal(await page.locator('#history li[data-version="5"] button[data-restore]').count(), 0, 'the current version has no restore button');

    await page.getByRole('button', { name: 'Restore version 3' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024?restored=3**');
    await page.getByText('Version 3 restored: it is now version 6.').waitFor();
    await page.getByText('7.0 / 10').waitFor();
    assert.equal(await versions.count(), 6);
    assert.match(await page.locator('#history li[data-version="6"] ul.changes').innerText(), /rating: 6\.5 → 7(\.0)?$/m);
    const game = await stored(page, 'lantern-quest-2024');
    assert.equal(game.version, 6);
    assert.equal(game.rating, 7);
  });

  test('deleting a game asks for confirmation', async () => {
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.locator('#delete-dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Keep it' }).click();
    assert.equal(await dialog.isVisible(), false);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL('**/?deleted=lantern-quest-2024');
    await page.getByText('Deleted lantern-quest-2024.').waitFor();
    const gone = await page.request.get('/games/lantern-quest-2024');
    assert.equal(gone.status(), 404);

    // Its page now tells who deleted it, keeps its history and can bring it back.
    await page.goto('/ui/games/lantern-quest-2024');
    await page.getByRole('heading', { name: 'Deleted: lantern-quest-2024' }).waitFor();
    assert.match(await page.locator('#history li[data-version="7"]').innerText(), /Deleted the game\./);
    await page.getByRole('button', { name: 'Restore version 6' }).click();
    await page.waitForURL('**/ui/games/lantern-quest-2024?restored=6**');
    await page.getByText('Version 6 restored: it is now version 8.').waitFor();
    assert.equal((await stored(page, 'lantern-quest-2024')).rating, 7);
    // And it goes again, as the rest of the suite expects.
    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL('**/?deleted=lantern-quest-2024');
  });

  test('uploading a file with bad records sends it straight to the bucket, shows progress, the outcome and every reject', async () => {
    await page.goto('/ui/uploads');
    const sent = [];
    const record = (request) => sent.push(`${request.method()} ${new URL(request.url()).pathname}`);
    page.on('request', record);
    await page.locator('#upload-file').setInputFiles(path.join(root, 'examples/bad-games.ndjson'));
    const rejects = page.locator('#ingest-result table.rejects');
    await rejects.waitFor({ timeout: 30000 });
    page.off('request', record);
    // The direct path: a URL from the API, then the file to it (the bucket's own URL on AWS).
    assert.ok(sent.includes('POST /uploads/presign'), sent.join(', '));
    assert.ok(sent.includes('PUT /uploads/direct'), sent.join(', '));
    assert.ok(!sent.includes('POST /uploads'), sent.join(', '));
    assert.equal(await page.locator('#upload-progress').getAttribute('value'), '100');
    const text = await rejects.textContent();
    assert.match(text, /line 2/);
    assert.match(text, /11\.5 is above the maximum 10/);
    const history = page.locator('table.ingests tbody tr', { hasText: 'bad-games.ndjson' });
    await history.waitFor();
    await screenshot('upload');
    await history.getByRole('link').click();
    await page.locator('table.rejects').waitFor();
    await screenshot('ingest');
  });

  test('a CSV import maps its columns, previews what it would change, then imports', async () => {
    const before = await stored(page, 'celeste');
    celesteBeforeImport = before;
    const csv = [
      'Id;Game;Systems;Score;Studio',
      `celeste;Celeste;PC|Nintendo Switch;9.8;${before.developer || 'Maddy Makes Games'}`,
      'tunic-2022;Tunic;PC;8.5;Finji',
      'bad-one;Bad One;PC;eleven;Nobody',
    ].join('\r\n') + '\r\n';
    await page.goto('/ui/uploads');
    await page.locator('#upload-file').setInputFiles({ name: 'spreadsheet.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('heading', { name: 'Map the columns of spreadsheet.csv' }).waitFor();
    assert.equal(await page.getByLabel('Id').inputValue(), 'id', 'a column named as a field is guessed');
    assert.equal(await page.getByLabel('Studio').inputValue(), 'extra.Studio');
    assert.equal(await page.getByLabel(/keep the fields this file does not have/).isChecked(), true, 'merging is the default');
    await page.getByLabel('Game', { exact: true }).selectOption('title');
    await page.getByLabel('Systems').selectOption('platforms');
    await page.getByLabel('Score').selectOption('rating');
    await page.getByRole('button', { name: 'Preview the import' }).click();
    await page.getByRole('heading', { name: 'Preview of spreadsheet.csv: nothing is written yet' }).waitFor();
    const counts = await page.locator('#preview-counts dd').allTextContents();
    assert.deepEqual(counts, ['1', '1', '0', '1'], 'new, changed, unchanged, rejected');
    const change = page.getByRole('region', { name: 'Changes' }).locator('tbody tr', { hasText: 'rating' });
    assert.deepEqual(await change.locator('td').allTextContents(), ['celeste', 'rating', String(before.rating), '9.8']);
    assert.match(await page.locator('#import-step').textContent(), /line 4.*4 \(Score\).*rating/);
    await screenshot('import-preview');
    if (process.env.LUDEX_UPDATE_SCREENSHOTS) copyFileSync(path.join(shots, 'import-preview-desktop.png'), path.join(root, 'docs/screenshots/import-preview.png'));
    assert.equal((await stored(page, 'celeste')).rating, before.rating, 'the preview wrote nothing');
    assert.equal((await page.request.get('/games/tunic-2022')).status(), 404);
    await page.getByRole('button', { name: 'Import 2 records' }).click();
    await page.getByText('1 accepted (1 new, 1 updated, 0 unchanged), 1 rejected.').or(page.getByText('2 accepted (1 new, 1 updated, 0 unchanged), 1 rejected.')).waitFor({ timeout: 30000 });
    const tunic = await stored(page, 'tunic-2022');
    assert.deepEqual(tunic.platforms, ['PC']);
    assert.equal(tunic.Studio, 'Finji');
    const celeste = await stored(page, 'celeste');
    assert.deepEqual(celeste.platforms, ['PC', 'Nintendo Switch']);
    assert.deepEqual(celeste.genres, before.genres, 'merged: what the file does not have stays');
    const ledger = await (await page.request.get('/ingests?limit=1')).json();
    assert.equal(ledger.items[0].mapping, 'Id=id,Game=title,Systems=platforms,Score=rating,Studio=extra.Studio');
    assert.equal(ledger.items[0].merge, true);
    assert.equal(ledger.items[0].key, 'uploads/spreadsheet.csv');
  });

  test('an upload is reverted from its page after a preview, and the revert reverted', async () => {
    const ledger = await (await page.request.get('/ingests?limit=1')).json();
    const upload = ledger.items[0];
    assert.equal(upload.key, 'uploads/spreadsheet.csv');
    await page.goto(`/ui/ingests/${upload.id}`);
    await page.getByRole('button', { name: 'Preview the revert' }).click();
    await page.getByText('Preview ready: nothing was changed yet.').waitFor();
    assert.deepEqual(await page.locator('#revert-preview dd').allTextContents(), ['1', '1', '0', '0'],
      'deleted, put back, brought back, conflicts');
    assert.equal((await page.request.get('/games/tunic-2022')).status(), 200, 'the preview wrote nothing');
    await screenshot('revert-preview');
    await page.getByRole('button', { name: 'Revert this upload' }).click();
    await page.locator('#revert-status', { hasText: 'Reverted' }).waitFor();
    assert.equal((await page.request.get('/games/tunic-2022')).status(), 404, 'the game the upload created is gone');
    const celeste = await stored(page, 'celeste');
    assert.deepEqual(celeste.platforms, celesteBeforeImport.platforms, 'the game it changed is as before');
    assert.equal(celeste.rating, celesteBeforeImport.rating);
    const history = await (await page.request.get('/games/celeste/history?limit=1')).json();
    assert.equal(history.items[0].author.kind, 'ingest');
    const revertId = history.items[0].author.id;
    // The upload's page says where its revert is; the revert's page can revert it.
    await page.goto(`/ui/ingests/${upload.id}`);
    await page.getByText(`This upload was reverted by ingest ${revertId}.`).waitFor();
    await page.getByRole('link', { name: `ingest ${revertId}` }).click();
    await page.getByRole('heading', { name: `Revert of ingest ${upload.id}` }).waitFor();
    assert.deepEqual(await page.locator('dl.counts dd').first().textContent(), '1');
    await page.getByRole('button', { name: 'Preview the revert' }).click();
    await page.getByText('Preview ready: nothing was changed yet.').waitFor();
    assert.deepEqual(await page.locator('#revert-preview dd').allTextContents(), ['0', '1', '1', '0']);
    await page.getByRole('button', { name: 'Revert this revert' }).click();
    await page.locator('#revert-status', { hasText: 'Reverted' }).waitFor();
    assert.deepEqual((await stored(page, 'tunic-2022')).platforms, ['PC'], 'the upload applies again');
  });

  test('the catalog filters as you type, sorts by column and pages by cursor, in the URL', async () => {
    await page.goto('/');
    await page.getByLabel('Title search').fill('kingdom');
    await page.waitForURL(/[?&]q=kingdom/);
    await page.locator('#results:not([aria-busy])').waitFor();
    const titles = await page.locator('table.games tbody th a').allTextContents();
    assert.ok(titles.length > 0);
    assert.ok(titles.every((t) => /kingdom/i.test(t)), titles.join(', '));

    await page.goto('/');
    await page.getByLabel('Platform').fill('PC');
    await page.getByLabel('Min. rating').fill('5');
    await page.waitForURL(/platform=PC.*min_rating=5/);
    await page.getByRole('link', { name: /^Title/ }).click();
    await page.waitForURL(/sort=title/);
    assert.match(await page.locator('th[aria-sort="ascending"]').textContent(), /^Title/);
    const first = await page.locator('table.games tbody th a').allTextContents();
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/cursor=/);
    await page.locator('#results:not([aria-busy])').waitFor();
    const second = await page.locator('table.games tbody th a').allTextContents();
    assert.ok(second.length > 0);
    assert.ok(second.every((t) => !first.includes(t)), 'the next page has other games');
    // The URL is the view: opening it afresh shows the same page.
    const shared = await context.newPage();
    await shared.goto(page.url());
    assert.deepEqual(await shared.locator('table.games tbody th a').allTextContents(), second);
    await shared.close();

    await page.goto('/?q=zzzz-nothing');
    await page.getByText('No games match these filters').waitFor();
    await screenshot('catalog-empty');
  });

  test('ten games are entered into an empty catalog with the keyboard alone', async () => {
    const emptyDir = mkdtempSync(path.join(tmpdir(), 'ludex-ui-empty-'));
    const emptyKey = ludexIn(emptyDir, 'keys', 'create', '--name', 'typist').trim();
    const started = await serve(emptyDir);
    try {
      const { ctx, page: p } = await signedIn(started.url, emptyKey);
      await p.goto('/');
      await p.getByText('The catalog is empty').waitFor();
      // Tab into the grid: one stop, on the new row's title.
      for (let i = 0; i < 40; i += 1) {
        await p.keyboard.press('Tab');
        if (await p.evaluate(() => document.activeElement.closest('tr[data-new]') !== null)) break;
      }
      assert.equal(await p.evaluate(() => document.activeElement.dataset.field), 'title');
      for (let i = 1; i <= 10; i += 1) {
        await p.keyboard.press('Enter');
        await p.keyboard.type(`Keyboard Game ${i}`);
        await p.keyboard.press('Enter');
        await p.locator('#grid tr[data-id]', { hasText: `Keyboard Game ${i}` }).waitFor();
      }
      // Up to the last game added, right to its platforms, two entries, saved.
      await p.keyboard.press('ArrowUp');
      await p.keyboard.press('ArrowRight');
      await p.keyboard.press('Enter');
      await p.keyboard.type('PC');
      await p.keyboard.press('Enter');
      await p.keyboard.type('Nintendo Switch');
      await p.keyboard.press('Enter');
      await p.keyboard.press('Enter');
      await p.locator('#grid tr[data-id="keyboard-game-10"] [data-field="platforms"]', { hasText: 'PC, Nintendo Switch' }).waitFor();
      const listed = await (await p.request.get('/games?limit=100&sort=title')).json();
      assert.deepEqual(listed.items.map((g) => g.title).sort(), Array.from({ length: 10 }, (_, i) => `Keyboard Game ${i + 1}`).sort());
      assert.deepEqual((await stored(p, 'keyboard-game-10')).platforms, ['PC', 'Nintendo Switch']);
      await screenshot('grid-typed', p);
      await ctx.close();
    } finally {
      started.child.kill('SIGTERM');
      await new Promise((resolve) => started.child.once('exit', resolve));
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });

  test('a cell edit shows the API\'s field error in the cell, and Esc leaves the game as it was', async () => {
    await page.goto('/?sort=title');
    await cell(page, 'celeste', 'genres').click();
    await screenshot('grid');
    if (process.env.LUDEX_UPDATE_SCREENSHOTS) copyFileSync(path.join(shots, 'grid-desktop.png'), path.join(root, 'docs/screenshots/grid.png'));
    await page.keyboard.press('Escape');
    await page.goto('/?q=hades');
    const rating = cell(page, 'hades', 'rating');
    await rating.click();
    const input = rating.locator('input');
    await input.fill('11');
    await input.press('Enter');
    await rating.locator('.cell-note').waitFor();
    assert.equal(await rating.locator('.cell-note').textContent(), 'rating: 11 is above the maximum 10');
    assert.equal(await rating.getAttribute('aria-invalid'), 'true');
    await input.press('Escape');
    assert.equal(await rating.textContent(), '9.3');
    assert.equal((await stored(page, 'hades')).rating, 9.3);
    await rating.click();
    await rating.locator('input').fill('9.4');
    await rating.locator('input').press('Enter');
    await rating.getByText('9.4').waitFor();
    assert.equal((await stored(page, 'hades')).rating, 9.4);
  });

  test('a conflict between two signed-in browsers shows both values and keeps the one chosen', async () => {
    const other = await signedIn(base, key);
    await page.goto('/?q=celeste');
    await other.page.goto('/?q=celeste');
    const mine = cell(page, 'celeste', 'developer');
    await mine.click();
    await mine.locator('input').fill('Extremely OK Games');
    const theirs = cell(other.page, 'celeste', 'developer');
    await theirs.click();
    await theirs.locator('input').fill('Maddy Thorson');
    await theirs.locator('input').press('Enter');
    await theirs.getByText('Maddy Thorson').waitFor();
    await mine.locator('input').press('Enter');
    const note = mine.locator('.cell-note.conflict');
    await note.waitFor();
    assert.match(await note.textContent(), /Yours: Extremely OK Games/);
    assert.match(await note.textContent(), /Saved \(version \d+\): Maddy Thorson/);
    await screenshot('grid-conflict');
    await note.getByRole('button', { name: 'Keep mine' }).click();
    await mine.getByText('Extremely OK Games').waitFor();
    assert.equal((await stored(page, 'celeste')).developer, 'Extremely OK Games');
    await other.ctx.close();
  });

  test('a platform added to every game of a filtered selection, then undone', async () => {
    await page.goto('/?genre=RPG');
    const ids = await page.locator('#grid tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.ok(ids.length >= 2, ids.join(', '));
    const before = await Promise.all(ids.map((id) => stored(page, id)));
    await page.locator('#grid thead input[data-select-all]').check();
    await page.getByText(`${ids.length} selected`).waitFor();
    await page.getByLabel('What to do').selectOption('add');
    await page.getByLabel('Which field').selectOption('platforms');
    await page.getByLabel('Value').fill('Stadia');
    await page.getByRole('button', { name: `Apply to ${ids.length} games…` }).click();
    await page.getByRole('heading', { name: `Add platform “Stadia” to ${ids.length} games?` }).waitFor();
    await screenshot('grid-bulk-confirm');
    await page.getByRole('button', { name: 'Apply', exact: true }).click();
    await page.locator('#bulk-status', { hasText: `${ids.length} changed.` }).waitFor();
    for (const id of ids) assert.ok((await stored(page, id)).platforms.includes('Stadia'), id);
    await page.getByRole('button', { name: /^Undo: Add platform/ }).click();
    await page.locator('#bulk-status', { hasText: `Undone: ${ids.length} restored.` }).waitFor();
    for (const [i, id] of ids.entries()) {
      const now = await stored(page, id);
      assert.deepEqual(now.platforms, before[i].platforms, id);
      assert.equal(now.version, before[i].version + 2, `${id}: the undo is a new version`);
    }
  });

  test('a tag added to every game matching a filter, beyond the page, by a server-side job', async () => {
    await page.goto('/?platform=PC&limit=5');
    await page.locator('#grid thead input[data-select-all]').check();
    await page.getByRole('button', { name: 'Select all games matching this filter' }).click();
    const selected = page.getByText(/^All \d+ games matching this filter selected$/);
    await selected.waitFor();
    const n = Number((await selected.textContent()).match(/\d+/)[0]);
    const pcGames = [];
    for (let cursor = ''; ;) {
      const listed = await (await page.request.get(`/games?platform=PC&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json();
      pcGames.push(...listed.items.map((g) => g.id));
      if (!listed.next_cursor) break;
      cursor = listed.next_cursor;
    }
    assert.equal(n, pcGames.length, 'the count is every match, not the page');
    assert.ok(n > 5);
    await page.getByLabel('What to do').selectOption('add');
    await page.getByLabel('Which field').selectOption('tags');
    await page.getByLabel('Value').fill('every-pc');
    await page.getByRole('button', { name: `Apply to ${n} games…` }).click();
    await page.getByRole('heading', { name: `Add tag “every-pc” to ${n} games?` }).waitFor();
    await page.getByRole('button', { name: 'Apply', exact: true }).click();
    await page.locator('#bulk-status', { hasText: `${n} changed, 0 already so.` }).waitFor({ timeout: 30000 });
    for (const id of pcGames) assert.ok((await stored(page, id)).tags.includes('every-pc'), id);
    const other = await (await page.request.get('/games?platform=PlayStation%205&limit=100')).json();
    const outside = other.items.filter((g) => !(g.platforms || []).some((p) => p.toLowerCase() === 'pc'));
    assert.ok(outside.every((g) => !(g.tags || []).includes('every-pc')), 'games outside the filter are left alone');
  });

  test('the grid works at 375 px wide: it scrolls inside its box, and cells still edit', async () => {
    const phone = await signedIn(base, key, MOBILE);
    await phone.page.goto('/?q=celeste');
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= MOBILE.width, `the page is ${width} px wide`);
    const tags = cell(phone.page, 'celeste', 'tags');
    await tags.scrollIntoViewIfNeeded();
    await tags.click();
    await tags.locator('input').fill('pixel art');
    await tags.locator('input').press('Enter');
    await tags.locator('input').press('Enter');
    await tags.getByText('pixel art').waitFor();
    // The chip shows while the save is on its way: wait for the saved game.
    const tagged = async () => ((await stored(phone.page, 'celeste')).tags || []).includes('pixel art');
    for (let i = 0; i < 50 && !(await tagged()); i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(await tagged(), 'the tag was saved');
    await phone.page.screenshot({ path: path.join(shots, 'grid-mobile-375.png'), fullPage: true });
    await phone.ctx.close();
  });

  test('the reports chart the catalog, with tables and CSV downloads', async () => {
    await page.goto('/ui/reports');
    assert.equal(await page.locator('svg.chart').count(), 4);
    const pc = page.locator('#platforms tbody tr', { hasText: /^PC/ });
    assert.ok(Number(await pc.locator('td').textContent()) > 0);
    const csv = await page.request.get('/ui/reports/ratings.csv');
    assert.equal(csv.headers()['content-type'], 'text/csv; charset=utf-8');
    assert.match(await csv.text(), /^rating,games\r\n0–1,\d+\r\n/);
    await screenshot('reports');
    if (process.env.LUDEX_UPDATE_SCREENSHOTS) copyFileSync(path.join(shots, 'reports-desktop.png'), path.join(root, 'docs/screenshots/reports.png'));
  });

  test('markup, script and formula payloads in a game render as text on every page and in the CSVs', async () => {
    const script = '<script>pwn("script")</script>';
    const attr = '"><img src=x onerror="pwn(\'attribute\')">';
    const link = 'javascript:pwn("link")';
    const formula = '=HYPERLINK("http://evil.example","x")';
    const game = {
      id: 'xss-probe',
      title: `${script}${attr}`,
      platforms: [attr, formula],
      genres: [script, '@SUM(1+1)'],
      tags: [link, attr],
      developer: link,
      publisher: '-2+3',
      description: `</textarea>${script}`,
      homepage: link,
      '<b>bold</b>': script,
    };
    const created = await page.request.post('/games', { headers: { Authorization: `Bearer ${key}` }, data: game });
    assert.equal(created.status(), 201, await created.text());

    const probe = await context.newPage();
    // Injected markup would be blocked by the CSP; count the blocks too, not only what ran.
    await probe.addInitScript(() => {
      window.ran = [];
      window.pwn = (what) => window.ran.push(what);
      window.blocked = [];
      document.addEventListener('securitypolicyviolation', (e) => window.blocked.push(e.violatedDirective));
    });
    const inert = async (url) => {
      await probe.goto(url);
      const found = await probe.evaluate(() => ({
        handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML),
        scripts: [...document.querySelectorAll('script')].map((e) => e.getAttribute('src')).filter((src) => !src || !src.startsWith('/ui/assets/ui.js')),
        links: [...document.querySelectorAll('[href],[src],[action]')].map((e) => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action')).filter((v) => /^\s*javascript:/i.test(v)),
        ran: window.ran,
        blocked: window.blocked,
      }));
      assert.deepEqual(found.handlers, [], url);
      assert.deepEqual(found.scripts, [], url);
      assert.deepEqual(found.links, [], url);
      assert.deepEqual(found.ran, [], url);
      assert.deepEqual(found.blocked, [], url);
    };

    await inert('/');
    assert.equal(await probe.locator('table.games tbody th a').first().textContent(), game.title);
    await inert('/ui/games/xss-probe');
    assert.equal(await probe.locator('h1').textContent(), game.title);
    assert.equal(await probe.locator('dd', { hasText: 'onerror' }).first().textContent(), `${attr}, ${formula}`);
    assert.match(await probe.locator('pre.extra').textContent(), /"<b>bold<\/b>": "<script>/);
    await inert('/ui/games/xss-probe/edit');
    assert.equal(await probe.getByLabel('Title').inputValue(), game.title);
    assert.equal(await probe.getByLabel('Description').inputValue(), game.description);
    assert.equal(await probe.getByLabel('Tags').inputValue(), `${link}\n${attr}`);
    await inert('/ui/reports');
    assert.equal(await probe.locator('#platforms tbody th', { hasText: 'onerror' }).textContent(), attr);
    // Reflected: what a link can put in the query or the path comes back as text too.
    await inert(`/?q=${encodeURIComponent(attr)}&platform=${encodeURIComponent(script)}`);
    assert.equal(await probe.getByLabel('Title search').inputValue(), attr);
    await inert(`/ui/sign-in?next=${encodeURIComponent(`/${attr}`)}`);
    await inert(`/ui/games/${encodeURIComponent(attr)}`);
    await inert(`/ui/ingests/${encodeURIComponent(script)}`);
    await probe.close();

    // CSV: no cell a spreadsheet would take for a formula.
    for (const report of ['platforms', 'genres']) {
      const csv = await (await page.request.get(`/ui/reports/${report}.csv`)).text();
      const firstCells = csv.split('\r\n').filter(Boolean).map((line) => line.replace(/^"/, ''));
      assert.deepEqual(firstCells.filter((cell) => /^[=+\-@\t\r]/.test(cell)), [], csv);
      assert.ok(csv.includes(report === 'platforms' ? `"'=HYPERLINK(""http://evil.example"",""x"")",1\r\n` : "'@SUM(1+1),1\r\n"), csv);
    }
    const removed = await page.request.delete('/games/xss-probe', { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(removed.status(), 204);
  });

  test('signing out ends the session', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    const write = await page.evaluate(async () => (await fetch('/games', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"title":"x"}' })).status);
    assert.equal(write, 401);
  });

  test('no page raised a script error', () => {
    assert.deepEqual(pageErrors.map(String), []);
  });
});
