// The drawing pad: a canvas to draw on with a mouse, a finger or a pen (pointer events), light ink on black.

/** Stroke width on the pad's 280x280 canvas: about 2 pixels once the drawing is fitted into 20x20. */
const STROKE_WIDTH = 20;

/** Wires the pad; `onStroke(gray, width, height)` gets the whole drawing after each stroke. */
export function mountDrawPad({ canvas, clearButton, onStroke }) {
  const context = canvas.getContext('2d', { willReadFrequently: true });
  let last = null;
  let drawn = false;

  function clear() {
    context.fillStyle = '#000';
    context.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * canvas.width,
      y: ((event.clientY - rect.top) / rect.height) * canvas.height,
    };
  }

  function line(from, to) {
    context.strokeStyle = '#fff';
    context.lineWidth = STROKE_WIDTH;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    drawn = true;
  }

  canvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    line(last, last);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    // Coalesced events keep fast pen and touch strokes smooth.
    const events = event.getCoalescedEvents?.() ?? [event];
    for (const e of events.length ? events : [event]) {
      const next = point(e);
      line(last, next);
      last = next;
    }
  });
  const finish = () => {
    if (!last) return;
    last = null;
    if (!drawn) return;
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    const gray = new Float32Array(canvas.width * canvas.height);
    for (let i = 0; i < gray.length; i++) gray[i] = data[4 * i] / 255;
    onStroke(gray, canvas.width, canvas.height);
  };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointercancel', finish);
  clearButton.addEventListener('click', clear);
  clear();
}
