// Decoded images on canvases: one at the model's pixel size (scaled up crisply by CSS), or a sheet of them.
// Works on a page's canvas and on an OffscreenCanvas in the model worker alike.

/** Puts an RGBA image (bytes, width*height*4) on `canvas`, resizing it to width x height first. */
export function drawRgba(canvas, rgba, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const bytes = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  canvas.getContext('2d').putImageData(new ImageData(bytes, width, height), 0, 0);
}

/** Draws intensities in [0, 1] (row-major, width*height) as white-on-black pixels. */
export function drawIntensities(canvas, pixels, width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const gray = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
    rgba[4 * i] = gray;
    rgba[4 * i + 1] = gray;
    rgba[4 * i + 2] = gray;
    rgba[4 * i + 3] = 255;
  }
  drawRgba(canvas, rgba, width, height);
}

/** Lays `count` decoded images (intensities, one after another) out as a sheet `columns` images wide. */
export function tileIntensities(pixels, count, columns, width, height) {
  const rows = Math.ceil(count / columns);
  const sheetWidth = columns * width;
  const sheet = new Float32Array(sheetWidth * rows * height);
  for (let k = 0; k < count; k++) {
    const [row, col] = [Math.floor(k / columns), k % columns];
    for (let y = 0; y < height; y++) {
      const line = pixels.subarray((k * height + y) * width, (k * height + y + 1) * width);
      sheet.set(line, (row * height + y) * sheetWidth + col * width);
    }
  }
  return { sheet, sheetWidth, sheetHeight: rows * height };
}
