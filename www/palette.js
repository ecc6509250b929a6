// How a class looks wherever classes are drawn (the class map, its legend, the lab): a colour from a
// published colour-blind-safe sequence and a marker shape, so that classes differ without colour too.

/**
 * Petroff's 10-colour accessible sequence (M. A. Petroff, "Accessible Color Sequences for Data
 * Visualization", 2021; matplotlib's "petroff10" style), in its published order.
 */
export const CLASS_COLOURS = [
  '#3f90da', '#ffa90e', '#bd1f01', '#94a4a2', '#832db6',
  '#a96b59', '#e76300', '#b9ac70', '#717581', '#92dadd',
];

/** Marker shapes, in order. Seven, a number prime to the ten colours: a colour and shape pair repeats only every 70 classes. */
export const MARKER_SHAPES = ['circle', 'square', 'triangle', 'diamond', 'triangle-down', 'plus', 'cross'];

/** How many classes get a colour and shape pair of their own (past this, pairs repeat; the map's highlight filter still tells them apart). */
export const DISTINCT_CLASS_STYLES = CLASS_COLOURS.length * MARKER_SHAPES.length;

/** The colour of class `label` (the sequence repeats past its length). */
export function classColour(label) {
  return CLASS_COLOURS[label % CLASS_COLOURS.length];
}

/** The marker shape of class `label`. */
export function classShape(label) {
  return MARKER_SHAPES[label % MARKER_SHAPES.length];
}

/** The outline that keeps light colours visible on white. */
const OUTLINE = 'rgba(0, 0, 0, 0.7)';

/** A plus sign's outline, arms 0.35 thick, reaching 1.1 from the centre; the cross is the same turned by 45 degrees. */
const PLUS = [[-0.35, -1.1], [0.35, -1.1], [0.35, -0.35], [1.1, -0.35], [1.1, 0.35], [0.35, 0.35],
  [0.35, 1.1], [-0.35, 1.1], [-0.35, 0.35], [-1.1, 0.35], [-1.1, -0.35], [-0.35, -0.35]];

/** Each shape's outline, in units of the marker's radius about its centre (y down); the circle is an arc. */
const OUTLINES = {
  square: [[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]],
  triangle: [[0, -1.15], [1.05, 0.75], [-1.05, 0.75]],
  'triangle-down': [[0, 1.15], [1.05, -0.75], [-1.05, -0.75]],
  diamond: [[0, -1.2], [1.05, 0], [0, 1.2], [-1.05, 0]],
  plus: PLUS,
  cross: PLUS.map(([x, y]) => [(x - y) * Math.SQRT1_2, (x + y) * Math.SQRT1_2]),
};

/** Adds one shape of radius r about (x, y) to the context's current path. */
function tracePath(context, shape, x, y, r) {
  const outline = OUTLINES[shape];
  if (!outline) {
    context.moveTo(x + r, y);
    context.arc(x, y, r, 0, 2 * Math.PI);
    return;
  }
  outline.forEach(([dx, dy], i) => (i ? context.lineTo(x + dx * r, y + dy * r) : context.moveTo(x + dx * r, y + dy * r)));
  context.closePath();
}

/**
 * Draws class `label`'s markers (its colour and shape, outlined) at `points` ([x0, y0, x1, y1, ...]),
 * r canvas pixels from each centre, as one path: one fill and one stroke however many there are.
 */
export function drawClassMarkers(context, label, points, r) {
  const shape = classShape(label);
  context.beginPath();
  for (let i = 0; i + 1 < points.length; i += 2) tracePath(context, shape, points[i], points[i + 1], r);
  context.fillStyle = classColour(label);
  context.fill();
  context.lineWidth = Math.max(0.6, r / 5);
  context.strokeStyle = OUTLINE;
  context.stroke();
}

/** Draws class `label`'s marker at (x, y), r canvas pixels from the centre. */
export function drawClassMarker(context, label, x, y, r) {
  drawClassMarkers(context, label, [x, y], r);
}
