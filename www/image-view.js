// The large decoded image: one canvas at the model's pixel size, scaled up crisply by CSS.

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
