// Every screen: the layout from a 360 px phone to a projector, touch input on a phone and a tablet
// (emulated touch screens, real touch events through Chromium's input pipeline), and projector mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openInContext, screenshotPath, canvasPixels, canvasChanged } from './harness.mjs';

const session = useServerAndBrowser();

/** The sizes checked: two phones, a tablet upright and on its side, a laptop. Touch on all but the laptop. */
const SCREENS = [
  { width: 360, height: 740, touch: true, columns: 1 },
  { width: 390, height: 844, touch: true, columns: 1 },
  { width: 768, height: 1024, touch: true, columns: 2 },
  { width: 1024, height: 768, touch: true, columns: 2 },
  { width: 1280, height: 800, touch: false, columns: 2 },
];

/** The smallest touch target, in CSS pixels. */
const TOUCH_TARGET = 44;

const open = ({ width, height, touch }, options = {}) =>
  openInContext(session.browser, session.server.url, { viewport: { width, height }, touch, ...options });

/** Every element's visible right edge, the page's scroll width, and where the first screen's parts are. */
function measureLayout(page) {
  return page.evaluate(() => {
    const box = (selector) => {
      const r = document.querySelector(selector).getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY };
    };
    // Inside a box that scrolls or clips sideways (a wide table's scroll region), what shows ends at its edge.
    const visibleRight = (e) => {
      let right = e.getBoundingClientRect().right;
      for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible') right = Math.min(right, a.getBoundingClientRect().right);
      }
      return right;
    };
    const widest = [...document.querySelectorAll('body *')]
      .filter((e) => e.getClientRects().length)
      .map((e) => ({ what: `${e.tagName.toLowerCase()}#${e.id}.${e.className}`, right: visibleRight(e) }))
      .sort((a, b) => b.right - a.right)[0];
    return {
      scrollWidth: document.documentElement.scrollWidth,
      widest,
      image: box('#image'),
      sliders: box('#sliders'),
      grid: box('#grid-canvas'),
      latentPanel: box('[aria-labelledby="latent-title"]'),
      gridPanel: box('[aria-labelledby="grid-title"]'),
    };
  });
}

for (const screen of SCREENS) {
  const size = `${screen.width}x${screen.height}`;
  test(`${size}${screen.touch ? ', touch' : ''}: nothing spills sideways, the first screen's parts fit, ${screen.columns} column(s)`, async () => {
    const { context, page, errors } = await open(screen);
    const layout = await measureLayout(page);
    assert.ok(layout.scrollWidth <= screen.width, `the page is ${layout.scrollWidth} px wide`);
    assert.ok(layout.widest.right <= screen.width + 0.5, `${layout.widest.what} reaches ${layout.widest.right} px`);
    for (const part of ['image', 'sliders', 'grid']) {
      const { left, right } = layout[part];
      assert.ok(left >= 0 && right <= screen.width, `${part} spans ${left}..${right} px`);
    }
    const { latentPanel, gridPanel } = layout;
    if (screen.columns === 1) {
      assert.ok(gridPanel.top >= latentPanel.bottom, 'the grid comes below the image and the sliders');
      assert.ok(layout.image.bottom <= layout.sliders.top, 'the image comes before the sliders');
    } else {
      assert.ok(gridPanel.left >= latentPanel.right, 'the grid stands beside the image and the sliders');
    }
    if (screen.touch) {
      // Every control a finger can reach is at least 44 px each way; the gallery's thumbnails too.
      const small = await page.evaluate((least) => {
        const controls = document.querySelectorAll(
          'button, select, input[type="number"], input[type="range"], .file-button, label:has(> input[type="checkbox"]), canvas[tabindex]',
        );
        const tooSmall = [...controls]
          .filter((e) => e.getClientRects().length)
          .map((e) => ({ what: `${e.tagName.toLowerCase()}#${e.id}`, ...e.getBoundingClientRect().toJSON() }))
          .filter((r) => r.width < least || r.height < least)
          .map((r) => `${r.what} ${r.width.toFixed(0)}x${r.height.toFixed(0)}`);
        const gallery = document.getElementById('gallery');
        const thumbnail = gallery.clientWidth / Number(gallery.dataset.columns);
        if (thumbnail < least) tooSmall.push(`gallery thumbnails ${thumbnail.toFixed(0)} px`);
        return tooSmall;
      }, TOUCH_TARGET);
      assert.deepEqual(small, [], 'touch targets under 44 px');
    }
    await page.screenshot({ path: screenshotPath(`layout-${size}.png`), fullPage: true });
    assert.deepEqual(errors, []);
    await context.close();
  });
}

/** Touch events through Chromium's input pipeline (CDP), as a finger makes them; coordinates in CSS pixels. */
async function finger(context, page) {
  const cdp = await context.newCDPSession(page);
  const send = (type, points) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: points });
  return {
    /** A drag through the points [x, y], lifting at the last. */
    async drag(points) {
      const [first, ...rest] = points;
      await send('touchStart', [{ x: first[0], y: first[1] }]);
      for (const [x, y] of rest) await send('touchMove', [{ x, y }]);
      await send('touchEnd', []);
    },
  };
}

/** The current z and the decoded image's pixels. */
const snapshot = async (page) => {
  const { data } = await canvasPixels(page, '#image');
  return { z: await page.evaluate(() => window.explorer.store.get().z), image: data };
};

/** Waits until the decoded image differs from `before`. */
function imageChanged(page, before) {
  return canvasChanged(page, '#image', before, 30_000);
}

for (const screen of [SCREENS[1], SCREENS[2]]) {
  const size = `${screen.width}x${screen.height}`;
  test(`${size} by touch: a slider drag changes the image, a tap on the grid sets its two dims, a grid drag does not scroll`, async () => {
    const { context, page, errors } = await open(screen);
    const touch = await finger(context, page);

    const slider = page.locator('#slider-z3');
    await slider.scrollIntoViewIfNeeded();
    const before = await snapshot(page);
    const box = await slider.boundingBox();
    const y = box.y + box.height / 2;
    const path = Array.from({ length: 11 }, (_, i) => [box.x + box.width * (0.5 + 0.04 * i), y]);
    await touch.drag(path);
    await imageChanged(page, before.image);
    const afterSlider = await snapshot(page);
    assert.ok(afterSlider.z[2] > before.z[2] + 0.5, `z3 went from ${before.z[2]} to ${afterSlider.z[2]}`);
    assert.deepEqual(afterSlider.z.filter((_, d) => d !== 2), before.z.filter((_, d) => d !== 2), 'only z3 moved');

    // A tap on cell (col 3, row 12) of the 16x16 grid sets z1 and z2 to that cell's centre.
    const grid = page.locator('#grid-canvas');
    await grid.scrollIntoViewIfNeeded();
    const frame = await grid.boundingBox();
    await page.touchscreen.tap(frame.x + (3.5 / 16) * frame.width, frame.y + (12.5 / 16) * frame.height);
    const tapped = await page.evaluate(() => window.explorer.store.get());
    const { latent_mean: mean, latent_std: std } = tapped.model.meta;
    const centre = (d, f) => mean[d] - 3 * std[d] + 6 * std[d] * f;
    assert.ok(Math.abs(tapped.z[0] - centre(0, 3.5 / 16)) < 1e-5, `z1 = ${tapped.z[0]}`);
    assert.ok(Math.abs(tapped.z[1] - centre(1, 1 - 12.5 / 16)) < 1e-5, `z2 = ${tapped.z[1]}`);
    assert.equal(tapped.z[2], afterSlider.z[2], 'z3 stays');

    // An upward drag across the grid moves the marker, not the page.
    const scrollBefore = await page.evaluate(() => scrollY);
    const column = frame.x + frame.width * 0.6;
    await touch.drag(Array.from({ length: 12 }, (_, i) => [column, frame.y + frame.height * (0.9 - 0.07 * i)]));
    const dragged = await page.evaluate(() => ({ z: window.explorer.store.get().z, scroll: scrollY }));
    assert.equal(dragged.scroll, scrollBefore, 'the page did not scroll');
    assert.ok(dragged.z[1] > tapped.z[1] + 1 * std[1], `z2 followed the finger up: ${tapped.z[1]} -> ${dragged.z[1]}`);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test(`${size} by touch: a stroke on the pad encodes without scrolling, the map and the strip's scrubber answer taps`, async () => {
    // Reduced motion: no autoplay moves the scrubber under the finger.
    const { context, page, errors } = await open(screen, { reducedMotion: 'reduce' });
    const touch = await finger(context, page);
    const pad = page.locator('#pad');
    await pad.scrollIntoViewIfNeeded();
    const box = await pad.boundingBox();
    const scrollBefore = await page.evaluate(() => scrollY);
    // A "7" drawn downward: a page that scrolled with the finger would end the stroke early.
    const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
    const seven = [at(0.25, 0.2), at(0.5, 0.2), at(0.75, 0.2)];
    for (let i = 1; i <= 8; i++) seven.push(at(0.75 - 0.04 * i, 0.2 + 0.075 * i));
    await touch.drag(seven);
    await page.waitForFunction(() => window.explorer.store.get().encoded?.source === 'your drawing');
    assert.equal(await page.evaluate(() => scrollY), scrollBefore, 'the page did not scroll under the stroke');
    const encoded = await page.evaluate(() => window.explorer.store.get().encoded);
    assert.ok([...encoded.mu, ...encoded.logvar].every(Number.isFinite));
    const rows = new Set(Object.values(encoded.pixels).flatMap((v, i) => (v > 0.5 ? [Math.floor(i / 28)] : [])));
    assert.ok(rows.size >= 15, `the stroke's ink spans ${rows.size} rows`);

    // A tap on the class map loads the atlas image under the finger.
    const map = page.locator('#class-map');
    await map.scrollIntoViewIfNeeded();
    await page.waitForFunction(() => document.getElementById('class-map').dataset.points);
    const target = await page.evaluate(() => {
      // The point with the most room around it, so that the tap is unambiguous.
      const { classMap } = window.explorer;
      const { atlas } = window.explorer.store.get();
      const points = Array.from({ length: atlas.count }, (_, i) => classMap.pointAt(i));
      let [best, room] = [0, -1];
      points.forEach((p, i) => {
        const nearest = Math.min(...points.map((q, j) => (j === i ? Infinity : Math.hypot(p.x - q.x, p.y - q.y))));
        if (nearest > room) [best, room] = [i, nearest];
      });
      return { index: best, ...points[best], room };
    });
    const frame = await map.boundingBox();
    // Off by a few pixels, as a finger is.
    // A finger's pause between gestures: Chromium drops a tap that comes a few milliseconds after the scroll.
    await page.waitForTimeout(500);
    await page.touchscreen.tap(frame.x + target.x + Math.min(6, target.room / 3), frame.y + target.y);
    await page.waitForFunction((i) => window.explorer.store.get().encoded?.source.startsWith(`test image #${i} `), target.index);

    // The strip's scrubber follows a finger once A and B are set.
    await page.evaluate(() => {
      const { store } = window.explorer;
      const { atlas, model } = store.get();
      const d = model.meta.latent_dim;
      store.update({ a: Array.from(atlas.mu.subarray(0, d)), b: Array.from(atlas.mu.subarray(d * 7, d * 8)) });
    });
    const scrubber = page.locator('#interp-scrub');
    await scrubber.scrollIntoViewIfNeeded();
    const bar = await scrubber.boundingBox();
    const y = bar.y + bar.height / 2;
    const start = Number(await scrubber.inputValue());
    const thumb = bar.x + 8 + ((bar.width - 16) * start) / 1000;
    await touch.drag(Array.from({ length: 10 }, (_, i) => [thumb + i * (bar.width * 0.06), y]));
    const moved = Number(await scrubber.inputValue());
    assert.ok(moved > start + 200, `the scrubber went from ${start} to ${moved}`);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

for (const [width, height] of [[1920, 1080], [1280, 720]]) {
  test(`projector mode at ${width}x${height}: large, black on white, and nothing spills sideways`, async () => {
    const { context, page, errors } = await open({ width, height, touch: false });
    const normalFont = await page.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize));
    await page.getByRole('button', { name: 'Projector mode' }).click();
    const look = await page.evaluate(() => ({
      font: parseFloat(getComputedStyle(document.body).fontSize),
      ink: getComputedStyle(document.body).color,
      border: getComputedStyle(document.querySelector('.panel')).borderTopWidth,
      image: document.getElementById('image').clientWidth,
    }));
    assert.ok(look.font >= normalFont * 1.25, `font ${normalFont} -> ${look.font}`);
    assert.equal(look.ink, 'rgb(0, 0, 0)');
    assert.equal(look.border, '3px');
    assert.equal(look.image, 360, 'the image at its projector size');
    const layout = await measureLayout(page);
    assert.ok(layout.scrollWidth <= width, `the page is ${layout.scrollWidth} px wide`);
    assert.ok(layout.widest.right <= width + 0.5, `${layout.widest.what} reaches ${layout.widest.right} px`);
    for (const part of ['image', 'sliders', 'grid']) assert.ok(layout[part].right <= width, `${part} reaches ${layout[part].right} px`);
    assert.ok(layout.gridPanel.left >= layout.latentPanel.right, 'two columns');
    await page.screenshot({ path: screenshotPath(`layout-projector-${width}x${height}.png`) });
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('phone and tablet screenshots of the first screen are saved', async () => {
  for (const [screen, name] of [[SCREENS[1], 'screenshot-phone.png'], [SCREENS[2], 'screenshot-tablet.png']]) {
    const { context, page, errors } = await open(screen);
    // The same repeatable sample as the desktop screenshot.
    await page.getByLabel('seed', { exact: true }).fill('7');
    await page.getByRole('button', { name: 'Random from the prior' }).click();
    await page.getByText('showing the sample for seed 7').waitFor();
    await page.waitForFunction(() => document.getElementById('grid-canvas').dataset.serial);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await page.screenshot({ path: screenshotPath(name) });
    assert.deepEqual(errors, []);
    await context.close();
  }
});
