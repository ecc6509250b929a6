// The first look, before anyone clicks: which atlas images the encode panel and the A-B strip start with.

/**
 * The atlas indices to start from: the first image to encode, and A and B, two images of different
 * classes (the first image and the first of another class). `b` is null when the atlas has one class.
 */
export function startingImages(atlas) {
  if (!atlas?.count) return null;
  const b = atlas.labels.findIndex((label) => label !== atlas.labels[0]);
  return { encode: 0, a: 0, b: b < 0 ? null : b };
}
