// The prior N(0, I)'s 1, 2 and 3 sigma rings, drawn over a view of two latent dims.

/** The radii drawn, in prior standard deviations. */
export const RING_SIGMAS = [1, 2, 3];

/**
 * Where an axis-aligned ellipse centred at (x, y) with radii (rx, ry), in latent units, falls in a view
 * spanning [xMin, xMax] x [yMin, yMax], as fractions of the view (y down): { cx, cy, rx, ry }.
 */
export function ellipseInView({ x, y, rx = 0, ry = 0 }, { xMin, xMax, yMin, yMax }) {
  return {
    cx: (x - xMin) / (xMax - xMin),
    cy: (yMax - y) / (yMax - yMin),
    rx: rx / (xMax - xMin),
    ry: ry / (yMax - yMin),
  };
}

/** Where the prior's ring of radius `sigma` (about the origin) falls in a view, as `ellipseInView` says. */
export function ringInView(sigma, view) {
  return ellipseInView({ x: 0, y: 0, rx: sigma, ry: sigma }, view);
}

const SVG = 'http://www.w3.org/2000/svg';

/** Draws the rings in an <svg> laid over the grid (viewBox 0 0 1 1, stretched to the grid). */
export function mountPriorRings(svg) {
  svg.setAttribute('viewBox', '0 0 1 1');
  svg.setAttribute('preserveAspectRatio', 'none');
  return {
    /** Redraws the rings for the grid's current ranges. */
    draw(view) {
      svg.replaceChildren(
        ...RING_SIGMAS.map((sigma) => {
          const { cx, cy, rx, ry } = ringInView(sigma, view);
          const ellipse = document.createElementNS(SVG, 'ellipse');
          for (const [k, v] of Object.entries({ cx, cy, rx, ry })) ellipse.setAttribute(k, String(v));
          ellipse.setAttribute('class', `ring ring-${sigma}`);
          ellipse.setAttribute('vector-effect', 'non-scaling-stroke');
          return ellipse;
        }),
      );
    },
  };
}
