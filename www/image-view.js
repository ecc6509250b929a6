// Decoded images on canvases: one at the model's pixel size (scaled up crisply by CSS), or a sheet of them.

/** Draws intensities in [0, 1] (row-major, width*height) as white-on-black pixels. */
export function drawIntensities(canvas, pixels, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const image = new ImageData(width, height);
  const rgba = image.data;
  for (let i = 0; i < width * height; i++) {
    const gray = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
    rgba[4 * i] = gray;
    rgba[4 * i + 1] = gray;
    rgba[4 * i + 2] = gray;
    rgba[4 * i + 3] = 255;
  }
  canvas.getContext('2d').putImageData(image, 0, 0);
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
