// Reading a picture file of any size into gray values, light ink on black, ready for preprocess.js.

import { grayFromRgba, normaliseInk } from './preprocess.js';

/** Pictures are first drawn at most this many pixels on their longer side, or the model's side if longer. */
const WORKING_SIDE = 280;

/**
 * Decodes an image file for a model whose longer side is `modelSide` pixels; resolves to
 * { gray, width, height, inverted }, or rejects with a readable error.
 */
export async function readPicture(file, modelSide) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`\u201c${file.name}\u201d could not be read as an image (PNG, JPEG, GIF, WebP, BMP or SVG)`);
  }
  if (!bitmap.width || !bitmap.height) throw new Error(`\u201c${file.name}\u201d has no pixels`);
  const scale = Math.min(1, Math.max(WORKING_SIDE, modelSide) / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff'; // transparent parts count as a light background
  context.fillRect(0, 0, width, height);
  context.imageSmoothingQuality = 'high';
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const gray = grayFromRgba(context.getImageData(0, 0, width, height).data, width, height);
  return { ...normaliseInk(gray, width, height), width, height };
}
