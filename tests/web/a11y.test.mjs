// Every student: axe-core on each of the page's states, text alternatives that follow z, a polite live
// region read once per action, the class map and the strip from the keyboard alone, a visible focus
// ring on every control, focused controls that stay put while views above them fill, and no motion for
// readers who ask for less.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AxeBuilder } from '@axe-core/playwright';
import { useServerAndBrowser, openInContext } from './harness.mjs';

const session = useServerAndBrowser();

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const open = (options = {}) => openInContext(session.browser, session.server.url, { viewport: DESKTOP, ...options });

/** Impacts that fail a test. */
const BLOCKING = ['serious', 'critical'];

/**
 * axe-core's violations on the page as it is now. The panels below the first screen skip rendering
 * until scrolled near (content-visibility: auto); they are rendered for the check, so that axe can
 * measure their colours too.
 */
async function axeViolations(page) {
  await page.evaluate(() => document.querySelectorAll('.panel.below').forEach((panel) => { panel.style.contentVisibility = 'visible'; }));
  const { violations } = await new AxeBuilder({ page }).analyze();
  await page.evaluate(() => document.querySelectorAll('.panel.below').forEach((panel) => { panel.style.contentVisibility = ''; }));
  return violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}

function assertNoBlocking(violations, state) {
  const blocking = violations.filter((v) => BLOCKING.includes(v.impact));
  assert.deepEqual(blocking, [], `${state}: axe-core found ${JSON.stringify(blocking, null, 1)}`);
}

/** Encodes atlas image `index` (in the gallery's top row) with a click on its thumbnail. */
async function encodeAtlas(page, index) {
  const gallery = page.locator('#gallery');
  await gallery.scrollIntoViewIfNeeded();
  const side = await gallery.evaluate((canvas) => canvas.clientWidth / Number(canvas.dataset.columns));
  await gallery.click({ position: { x: (index + 0.5) * side, y: side / 2 } });
  await page.waitForFunction((i) => window.explorer.store.get().encoded?.source.startsWith(`test image #${i} `), index);
}

/** Sets A and B to two atlas images' mu and waits for the strip. */
async function setEndpoints(page, [first, second]) {
  await page.evaluate(([i, j]) => {
    const { store } = window.explorer;
    const { atlas, model } = store.get();
    const d = model.meta.latent_dim;
    store.update({ a: Array.from(atlas.mu.subarray(i * d, (i + 1) * d)), b: Array.from(atlas.mu.subarray(j * d, (j + 1) * d)) });
  }, [first, second]);
  await page.waitForFunction(() => document.getElementById('interp-strip').dataset.serial);
}

for (const [name, options] of [['desktop', {}], ['phone, touch', { viewport: PHONE, touch: true }]]) {
  test(`axe-core (${name}): no serious or critical violation loaded, encoded, interpolating, highlighted or in projector mode`, async () => {
    const { context, page, errors } = await open(options);
    const found = {};
    found.loaded = await axeViolations(page);
    await encodeAtlas(page, 2);
    found.encoded = await axeViolations(page);
    await setEndpoints(page, [3, 130]);
    await page.locator('#interp-strip').focus();
    await page.keyboard.press('ArrowRight');
    found.interpolation = await axeViolations(page);
    await page.getByLabel('highlight').selectOption({ index: 4 });
    await page.locator('#class-map').focus();
    await page.keyboard.press('ArrowRight');
    found.highlighted = await axeViolations(page);
    await page.getByRole('button', { name: 'Projector mode' }).click();
    found.projector = await axeViolations(page);
    for (const [state, violations] of Object.entries(found)) {
      if (violations.length) console.log(`${name}, ${state}: ${JSON.stringify(violations)}`);
      assertNoBlocking(violations, `${name}, ${state}`);
    }
    assert.deepEqual(errors, []);
    await context.close();
  });
}

for (const [width, height] of [[1920, 1080], [1280, 720]]) {
  test(`axe-core: projector mode at ${width}x${height} has no serious or critical violation`, async () => {
    const { context, page } = await open({ viewport: { width, height } });
    await page.getByRole('button', { name: 'Projector mode' }).click();
    assertNoBlocking(await axeViolations(page), `projector ${width}x${height}`);
    await context.close();
  });
}

/** The page's text alternatives, and the atlas read afresh from the model (not the page's copy). */
function labelsAndAtlas(page) {
  return page.evaluate(async () => {
    const atlas = await window.explorer.decoder.atlas();
    await new Promise(requestAnimationFrame); // the alternatives follow z once per frame (www/frame.js)
    const { z, grid, model } = window.explorer.store.get();
    const label = (id) => document.getElementById(id).getAttribute('aria-label');
    return {
      image: label('image'), grid: label('grid-canvas'), map: label('class-map'),
      z, axes: grid, meta: model.meta, mu: Array.from(atlas.mu), labels: Array.from(atlas.labels),
    };
  });
}

/** Formats as the page does: sign, two decimals, a true minus sign. */
const shown = (v) => {
  const r = Number(v.toFixed(2));
  return `${r < 0 ? '\u2212' : r > 0 ? '+' : '\u2007'}${Math.abs(r).toFixed(2)}`;
};

for (const model of ['digits', 'fashion']) {
  test(`${model}: the image, grid and map alternatives follow z and name the nearest class`, async () => {
    const { context, page } = await open({ query: `?model=${model}` });
    await page.locator('#class-map').scrollIntoViewIfNeeded();
    await page.waitForFunction(() => document.getElementById('class-map').getAttribute('aria-label').includes('nearest'));
    const first = await labelsAndAtlas(page);
    const d = first.meta.latent_dim;
    const names = first.meta.class_names;
    // A few points: atlas images' own mu (their nearest is themselves) and points between them.
    const probes = [[5], [321], [40, 700], [2, 990, 0.3]];
    let previous = first;
    for (const probe of probes) {
      const z = await page.evaluate(([picks, mu, dims]) => {
        const at = (i) => mu.slice(i * dims, (i + 1) * dims);
        const [a, b = a, t = 0.5] = picks;
        return at(a).map((v, k) => v + (at(b)[k] - v) * t);
      }, [probe, first.mu, d]);
      await page.evaluate((next) => window.explorer.store.update({ z: next }), z);
      const now = await labelsAndAtlas(page);
      // The nearest test image over every dim, computed here.
      let [nearest, best] = [-1, Infinity];
      for (let i = 0; i < first.labels.length; i++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += (first.mu[i * d + k] - now.z[k]) ** 2;
        if (s < best) [nearest, best] = [i, s];
      }
      if (probe.length === 1) assert.equal(nearest, probe[0], 'an atlas image is its own nearest');
      for (let k = 0; k < d; k++) assert.ok(now.image.includes(`z${k + 1} = ${shown(now.z[k])}`), `image: z${k + 1} in “${now.image}”`);
      assert.ok(now.image.endsWith(`#${nearest}, is ${names[first.labels[nearest]]}`), `image: “${now.image}”, expected #${nearest}`);
      assert.notEqual(now.image, previous.image, 'the image alternative changed with z');

      // On the map, the nearest point as drawn: each axis spans mean ± 4 std over 720 canvas pixels, clamped 2 px in.
      const { xDim, yDim } = now.axes;
      const place = (v, dim, flip) => {
        const f = (v - (first.meta.latent_mean[dim] - 4 * first.meta.latent_std[dim])) / (8 * first.meta.latent_std[dim]);
        return Math.min(718, Math.max(2, (flip ? 1 - f : f) * 720));
      };
      const [zx, zy] = [place(now.z[xDim], xDim, false), place(now.z[yDim], yDim, true)];
      let [onMap, bestOnMap] = [-1, Infinity];
      for (let i = 0; i < first.labels.length; i++) {
        const s = Math.hypot(place(first.mu[i * d + xDim], xDim, false) - zx, place(first.mu[i * d + yDim], yDim, true) - zy);
        if (s < bestOnMap) [onMap, bestOnMap] = [i, s];
      }
      assert.ok(now.map.startsWith(`class map of ${first.labels.length} test images' encodings, z${xDim + 1} across and z${yDim + 1} up`), now.map);
      assert.ok(now.map.includes(`nearest the current z on the map: ${names[first.labels[onMap]]} (test image #${onMap})`), `map: “${now.map}”, expected #${onMap}`);
      assert.ok(now.grid.includes(`is at z${xDim + 1} = ${shown(now.z[xDim])}, z${yDim + 1} = ${shown(now.z[yDim])}`), now.grid);
      previous = now;
    }

    // The grid names its axes and their ranges, in the order they are drawn.
    await page.getByLabel('X axis').selectOption('z3');
    await page.getByLabel('Y axis').selectOption('z6');
    await page.getByLabel('range').selectOption('2');
    const { grid, meta } = await labelsAndAtlas(page);
    const [m, s] = [meta.latent_mean, meta.latent_std];
    const size = await page.evaluate(() => window.explorer.store.get().grid.size);
    assert.ok(grid.startsWith(`latent grid of ${size} by ${size} cells, each the decoder's picture of z with two dims swept: across, z3 from ${shown(m[2] - 2 * s[2])} to ${shown(m[2] + 2 * s[2])}; `
      + `down, z6 from ${shown(m[5] + 2 * s[5])} to ${shown(m[5] - 2 * s[5])}`), grid);
    await context.close();
  });
}

/** Starts counting the changes of every live region (polite or assertive, outputs and status roles included). */
function watchLiveRegions(page) {
  return page.evaluate(() => {
    window.liveChanges = [];
    const live = document.querySelectorAll(
      '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"], output:not([aria-hidden="true"])',
    );
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        const region = [...live].find((r) => r.contains(record.target));
        window.liveChanges.push({ id: region?.id ?? '', text: region?.textContent ?? '' });
      }
    });
    for (const region of live) observer.observe(region, { childList: true, subtree: true, characterData: true });
    return live.length;
  });
}

test('numbers are read out once when an action ends: a grid drag, a slider drag, an encoding', async () => {
  const { context, page } = await open();
  assert.ok(await watchLiveRegions(page) >= 1, 'the page has a live region');
  const grid = await page.locator('#grid-canvas').boundingBox();
  await page.mouse.move(grid.x + grid.width * 0.2, grid.y + grid.height * 0.2);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(grid.x + grid.width * (0.2 + 0.05 * i), grid.y + grid.height * (0.2 + 0.04 * i));
  const during = await page.evaluate(() => window.liveChanges.length);
  await page.mouse.up();
  await page.waitForTimeout(200);
  const afterGrid = await page.evaluate(() => ({ changes: window.liveChanges, z: window.explorer.store.get().z }));
  assert.equal(during, 0, 'nothing read out while dragging');
  assert.equal(afterGrid.changes.length, 1, `one read-out after the drag: ${JSON.stringify(afterGrid.changes)}`);
  assert.equal(afterGrid.changes[0].text, `z1 = ${shown(afterGrid.z[0])}, z2 = ${shown(afterGrid.z[1])}`);

  // A slider reads its own value out (aria-valuetext); nothing else speaks while it moves.
  const slider = await page.getByRole('slider', { name: 'z3', exact: true }).boundingBox();
  const y = slider.y + slider.height / 2;
  await page.mouse.move(slider.x + slider.width / 2, y);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(slider.x + slider.width * (0.5 - 0.04 * i), y);
  await page.mouse.up();
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.liveChanges.length), 1, 'the slider drag added no read-out');
  const valuetext = await page.getByRole('slider', { name: 'z3', exact: true }).getAttribute('aria-valuetext');
  assert.equal(valuetext, shown(await page.evaluate(() => window.explorer.store.get().z[2])));

  // An encoding reads its ELBO terms and the KL of each dim, as the table shows them.
  await encodeAtlas(page, 1);
  await page.waitForFunction(() => window.liveChanges.at(-1).text.startsWith('Encoded'));
  const { text, table, totals } = await page.evaluate(() => ({
    text: window.liveChanges.at(-1).text,
    table: [...document.querySelectorAll('#elbo-dims tr')].map((row) => row.lastChild.textContent),
    totals: [...document.querySelectorAll('#elbo-totals dd')].map((dd) => dd.textContent),
  }));
  assert.ok(text.includes(`reconstruction ${totals[0]}`) && text.includes(`KL ${totals[1]}`) && text.includes(`\u03bc ${totals[2]}`), text);
  table.forEach((kl, k) => assert.ok(text.includes(`z${k + 1} ${kl}`), `z${k + 1}'s KL ${kl} in “${text}”`));
  await context.close();
});

test('the class map works from the keyboard alone: Tab to it, arrows between points, Enter loads one', async () => {
  const { context, page } = await open();
  await page.locator('#class-map').scrollIntoViewIfNeeded();
  await page.waitForFunction(() => document.getElementById('class-map').dataset.points);
  await watchLiveRegions(page);
  // Tab forward from the highlight filter's label, backward onto the map.
  await page.getByLabel('highlight').focus();
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'class-map');
  const cursorAt = () => page.evaluate(() => {
    const text = window.liveChanges.at(-1)?.text ?? '';
    const index = Number(text.match(/^test image #(\d+)/)?.[1] ?? -1);
    return { index, point: index >= 0 ? window.explorer.classMap.pointAt(index) : null, visible: !document.getElementById('map-cursor').hidden };
  });
  await page.keyboard.press('ArrowRight');
  let at = await cursorAt();
  assert.ok(at.index >= 0 && at.visible, 'the cursor is on a point, and shows');
  for (const [key, axis, sign] of [['ArrowRight', 'x', 1], ['ArrowDown', 'y', 1], ['ArrowLeft', 'x', -1], ['ArrowUp', 'y', -1]]) {
    const before = at;
    await page.keyboard.press(key);
    at = await cursorAt();
    assert.notEqual(at.index, before.index, `${key} moved the cursor`);
    assert.ok(sign * (at.point[axis] - before.point[axis]) > 0, `${key} moved from ${JSON.stringify(before.point)} to ${JSON.stringify(at.point)}`);
  }
  await page.keyboard.press('Enter');
  await page.waitForFunction((i) => window.explorer.store.get().encoded?.source.startsWith(`test image #${i} `), at.index);
  const { z, mu } = await page.evaluate((i) => {
    const { z: current, atlas, model } = window.explorer.store.get();
    const d = model.meta.latent_dim;
    return { z: current, mu: Array.from(atlas.mu.subarray(i * d, (i + 1) * d)) };
  }, at.index);
  assert.deepEqual(z, mu, 'Enter loaded that point');

  // With one class highlighted, the keys visit that class only.
  await page.getByLabel('highlight').focus();
  await page.keyboard.press('ArrowDown'); // the first class
  await page.keyboard.press('ArrowDown'); // the second
  const chosen = await page.evaluate(() => document.getElementById('map-class').value);
  assert.equal(chosen, '1');
  await page.keyboard.press('Shift+Tab');
  const labels = [];
  for (const key of ['ArrowRight', 'ArrowRight', 'ArrowUp', 'ArrowLeft', 'ArrowDown']) {
    await page.keyboard.press(key);
    const { index } = await cursorAt();
    labels.push(await page.evaluate((i) => window.explorer.store.get().atlas.labels[i], index));
  }
  assert.deepEqual(labels, [1, 1, 1, 1, 1], 'only the highlighted class is visited');
  await context.close();
});

test('the strip works from the keyboard: arrows send each step to the sliders', async () => {
  const { context, page } = await open({ reducedMotion: 'reduce' });
  await setEndpoints(page, [3, 130]);
  await page.locator('#interp-strip').focus();
  await page.keyboard.press('ArrowRight'); // step 1
  await page.keyboard.press('ArrowRight'); // step 2
  const { z, a, b, steps } = await page.evaluate(() => window.explorer.store.get());
  const t = 1 / (steps - 1);
  z.forEach((v, k) => assert.ok(Math.abs(v - (a[k] + (b[k] - a[k]) * t)) < 1e-12, `z${k + 1} is step 2's`));
  await page.keyboard.press('End');
  assert.deepEqual(await page.evaluate(() => window.explorer.store.get().z), b, 'End goes to B');
  await context.close();
});

test('every control is reached by Tab, and each shows a focus ring', async () => {
  const { context, page } = await open();
  await setEndpoints(page, [3, 130]); // so that the strip's controls are enabled
  await encodeAtlas(page, 3); // so that the encode panel's buttons are enabled
  // Each control gets a key: its id, or its place in the list for those without one (the formula's dims).
  const wanted = await page.evaluate(() => [...document.querySelectorAll('button, select, input, [tabindex="0"]')]
    .filter((e) => !e.disabled && e.getClientRects().length + (e.closest('.file-button') ? 1 : 0) > 0)
    .map((e, i) => { e.dataset.tabKey = e.id || `${e.tagName.toLowerCase()} #${i}`; return e.dataset.tabKey; }));
  // A click on the title moves the start of Tab's order to the top of the page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.locator('h1').click();
  const reached = new Map();
  for (let i = 0; i < 2 * wanted.length + 20; i++) { // until it wraps; controls drawn later add to the count
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const focused = document.activeElement;
      if (focused === document.body) return { id: 'body' };
      // A hidden file input rings its label; the gallery rings its scroll box.
      const drawn = focused.closest('.file-button') ?? (focused.id === 'gallery' ? focused.parentElement : focused);
      const style = getComputedStyle(drawn);
      const box = drawn.getBoundingClientRect();
      return {
        // Controls drawn after the list was taken (the typeset formula's dims) get a key when first reached.
        id: (focused.dataset.tabKey ??= focused.id || `${focused.tagName.toLowerCase()} (drawn later) #${document.querySelectorAll('[data-tab-key]').length}`),
        outline: style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth),
        onScreen: box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth,
      };
    });
    if (ring.id === 'body' || reached.has(ring.id)) break;
    reached.set(ring.id, ring);
  }
  const missing = wanted.filter((id) => !reached.has(id));
  assert.deepEqual(missing, [], `controls that Tab never reaches; it reached, in order: ${[...reached.keys()].join(', ')}`);
  for (const [id, ring] of reached) {
    assert.ok(ring.outline >= 2, `${id}: focus ring ${ring.outline} px`);
    assert.ok(ring.onScreen, `${id} is scrolled into view when focused`);
  }
  await context.close();
});

test('the formula typeset late does not move the focused control below it, and a focused dim keeps focus as it is typeset again', async () => {
  const { context, page } = await open();
  // KaTeX is held back until the control below the formula has focus, as on a slow network.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/vendor/katex/katex.mjs', async (route) => { await held; await route.continue(); });
  await setEndpoints(page, [3, 130]);
  await encodeAtlas(page, 3);
  await page.locator('#interp-strip').focus();
  await page.keyboard.press('Tab');
  // Where Generate is after the focus scroll and two frames, as the reader sees it.
  const generateBox = () => page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
    const focused = document.activeElement;
    const { top, bottom } = focused.getBoundingClientRect();
    resolve(focused.id === 'generate' ? { top, bottom, height: innerHeight } : null);
  }))));
  const before = await generateBox();
  assert.ok(before, 'Tab from the strip reaches Generate');
  assert.ok(before.top >= 0 && before.bottom <= before.height, `Generate is on screen (${before.top}-${before.bottom} px)`);
  assert.equal(await page.locator('#formula').getAttribute('data-state'), 'stale', 'the formula is not typeset yet');
  release();
  await page.waitForFunction(() => document.getElementById('formula').dataset.state === 'current');
  const after = await generateBox();
  assert.ok(after, 'Generate keeps focus');
  assert.ok(Math.abs(after.top - before.top) <= 1, `Generate stays where it was (top ${before.top} px, now ${after.top} px)`);

  // A new typeset (here, the samples withdrawn) while a dim's line has focus gives focus to its new line.
  await page.locator('#formula .formula-dims li[data-dim="2"]').focus();
  await page.evaluate(() => window.explorer.store.update({ samples: null }));
  await page.waitForFunction(() => document.getElementById('formula').dataset.state === 'current'
    && document.querySelector('#formula p')?.textContent.startsWith('Drawing the samples'));
  assert.deepEqual(await page.evaluate(() => [document.activeElement.dataset.dim, document.activeElement.isConnected]), ['2', true],
    'focus is on dim 3\'s new line');
  await context.close();
});

test('the traversal strips have their height before they are first drawn', async () => {
  const { context, page } = await open();
  const strips = () => page.evaluate(() => {
    const canvas = document.getElementById('traversal');
    return { drawnHeight: canvas.height, height: canvas.getBoundingClientRect().height };
  });
  const { latent_dim: dims, height } = await page.evaluate(() => window.explorer.store.get().model.meta);
  const before = await strips();
  assert.notEqual(before.drawnHeight, dims * height, 'not drawn yet (off screen)');
  await page.locator('#traversal').scrollIntoViewIfNeeded();
  await page.waitForFunction((h) => document.getElementById('traversal').height === h, dims * height);
  const after = await strips();
  assert.ok(after.height > dims * 20, `the strips are drawn, ${after.height} px high`);
  assert.ok(Math.abs(after.height - before.height) <= 1, `the same height before (${before.height} px) and after drawing (${after.height} px)`);
  await context.close();
});

test('reduced motion: a new pair does not play by itself, and the play button still plays', async () => {
  for (const motion of ['no-preference', 'reduce']) {
    const { context, page } = await open({ reducedMotion: motion });
    await setEndpoints(page, [3, 130]);
    await page.locator('#interp-strip').scrollIntoViewIfNeeded();
    const scrub = () => page.evaluate(() => Number(document.getElementById('interp-scrub').value));
    if (motion === 'reduce') {
      await page.waitForTimeout(1500);
      assert.equal(await scrub(), 0, 'the scrubber stays at A');
      assert.equal(await page.locator('#interp-play').getAttribute('aria-pressed'), 'false');
      await page.getByRole('button', { name: 'Play' }).click();
      await page.waitForFunction(() => Number(document.getElementById('interp-scrub').value) > 100);
      await page.getByRole('button', { name: 'Pause' }).click();
    } else {
      // One sweep to B and back (3 s each way), then it stops by itself.
      await page.waitForFunction(() => Number(document.getElementById('interp-scrub').value) > 100);
      await page.waitForFunction(() => document.getElementById('interp-play').getAttribute('aria-pressed') === 'false', null, { timeout: 15_000 });
      assert.equal(await scrub(), 0, 'the autoplay ends back at A');
    }
    await context.close();
  }
});
