// The prior N(0, I)'s 1, 2 and 3 sigma rings, drawn over a view of two latent dims.

/** The radii drawn, in prior standard deviations. */
export const RING_SIGMAS = [1, 2, 3];

/**
 * Where a ring of radius `sigma` about the origin falls in a view spanning [xMin, xMax] x [yMin, yMax],
 * as fractions of the view (y down): { cx, cy, rx, ry }.
 */
export function ringInView(sigma, { xMin, xMax, yMin, yMax }) {
  return {
    cx: (0 - xMin) / (xMax - xMin),
    cy: (yMax - 0) / (yMax - yMin),
    rx: sigma / (xMax - xMin),
    ry: sigma / (yMax - yMin),
  };
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
