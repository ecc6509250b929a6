// Turns a drawing or a picture into a model's input (its width x height) the way the training images
// were made. Pure functions on arrays of gray values in [0, 1] (ink = 1), so they can be checked
// without a page.
//
// The model's metadata names the style (`preprocess`, docs/FORMAT.md), after the datasets' own recipes;
// resampling is by area averaging (which anti-aliases), and aspect ratios are kept except in 'none':
// - 'mnist' (digits): the ink's bounding box is scaled to fit 20/28 of the image (20x20 in 28x28) and
//   placed so that its centre of mass falls on the image's centre;
// - 'fit' (Fashion-MNIST): the bounding box is scaled to fill the image, and centred;
// - 'none': the whole picture is resized to the image, nothing cropped or centred.

/** The share of each side the 'mnist' style fits the ink into: MNIST's 20-pixel box in 28. */
const MNIST_BOX = 20 / 28;
/** A pixel brighter than this counts as ink when finding the bounding box. */
const INK_THRESHOLD = 0.1;

/** Gray values (luma, Rec. 601) in [0, 1] from opaque RGBA bytes. */
export function grayFromRgba(rgba, width, height) {
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    gray[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
  }
  return gray;
}

/** The mean of the outermost ring of pixels: the picture's background level. */
function borderMean(gray, width, height) {
  let sum = 0;
  let count = 0;
  for (let x = 0; x < width; x++) {
    sum += gray[x] + gray[(height - 1) * width + x];
    count += 2;
  }
  for (let y = 1; y < height - 1; y++) {
    sum += gray[y * width] + gray[y * width + width - 1];
    count += 2;
  }
  return sum / count;
}

/**
 * Makes a photo or scan look like the training data: light ink on black. Inverts when the background
 * (the border) is light, then stretches so the background goes to 0 and the brightest ink to 1.
 * Returns { gray, inverted }.
 */
export function normaliseInk(gray, width, height) {
  const inverted = borderMean(gray, width, height) > 0.5;
  const ink = inverted ? gray.map((v) => 1 - v) : Float32Array.from(gray);
  const background = borderMean(ink, width, height);
  let peak = 0;
  for (const v of ink) peak = Math.max(peak, v);
  const range = peak - background;
  const out = ink.map((v) => (range > 1e-6 ? Math.min(1, Math.max(0, (v - background) / range)) : 0));
  return { gray: out, inverted };
}

/** The smallest box holding every ink pixel: { x, y, width, height }, or null when there is none. */
function inkBox(gray, width, height) {
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (gray[y * width + x] <= INK_THRESHOLD) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Area-averages the `box` of a gray image into `outWidth` x `outHeight` pixels. */
function resampleBox(gray, width, box, outWidth, outHeight) {
  const out = new Float32Array(outWidth * outHeight);
  const sx = box.width / outWidth;
  const sy = box.height / outHeight;
  for (let oy = 0; oy < outHeight; oy++) {
    const top = box.y + oy * sy;
    const bottom = top + sy;
    for (let ox = 0; ox < outWidth; ox++) {
      const left = box.x + ox * sx;
      const right = left + sx;
      let sum = 0;
      let area = 0;
      for (let y = Math.floor(top); y < Math.ceil(bottom); y++) {
        const wy = Math.min(bottom, y + 1) - Math.max(top, y);
        for (let x = Math.floor(left); x < Math.ceil(right); x++) {
          const w = wy * (Math.min(right, x + 1) - Math.max(left, x));
          sum += w * gray[y * width + x];
          area += w;
        }
      }
      out[oy * outWidth + ox] = area > 0 ? sum / area : 0;
    }
  }
  return out;
}

/** Copies a small image into a `width` x `height` one with its top-left corner at (left, top), clipping. */
function place(small, smallWidth, smallHeight, left, top, width, height) {
  const out = new Float32Array(width * height);
  for (let y = 0; y < smallHeight; y++) {
    for (let x = 0; x < smallWidth; x++) {
      const [tx, ty] = [x + left, y + top];
      if (tx >= 0 && tx < width && ty >= 0 && ty < height) out[ty * width + tx] = small[y * smallWidth + x];
    }
  }
  return out;
}

/** The centre of mass of a small image, in pixel coordinates (pixel i spans [i, i + 1]). */
function centreOfMass(gray, width, height) {
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = gray[y * width + x];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  return mass > 0 ? { x: mx / mass, y: my / mass } : { x: width / 2, y: height / 2 };
}

/**
 * The model input (Float32Array, `outWidth` x `outHeight`, row-major, in [0, 1]) for a gray image with
 * light ink on black, in the given style ('mnist', 'fit' or 'none'). Throws when there is no ink to encode.
 */
export function toModelInput(gray, width, height, style, outWidth, outHeight) {
  const box = inkBox(gray, width, height);
  if (!box) throw new Error('there is no ink to encode: the image is blank');
  if (style === 'none') return resampleBox(gray, width, { x: 0, y: 0, width, height }, outWidth, outHeight);
  const share = style === 'mnist' ? MNIST_BOX : 1;
  const scale = Math.min((outWidth * share) / box.width, (outHeight * share) / box.height);
  const smallWidth = Math.max(1, Math.min(outWidth, Math.round(box.width * scale)));
  const smallHeight = Math.max(1, Math.min(outHeight, Math.round(box.height * scale)));
  const small = resampleBox(gray, width, box, smallWidth, smallHeight);
  if (style === 'fit') {
    const [left, top] = [Math.floor((outWidth - smallWidth) / 2), Math.floor((outHeight - smallHeight) / 2)];
    return place(small, smallWidth, smallHeight, left, top, outWidth, outHeight);
  }
  const centre = centreOfMass(small, smallWidth, smallHeight);
  const [left, top] = [Math.round(outWidth / 2 - centre.x), Math.round(outHeight / 2 - centre.y)];
  return place(small, smallWidth, smallHeight, left, top, outWidth, outHeight);
}
