// The atlas gallery: the model's held-out images as one sheet of thumbnails, filtered by class; click to pick,
// or move a cursor with the arrow keys and press Enter.

/** Thumbnails per row. */
const COLUMNS = 12;

/** Wires the gallery; `onPick(index)` gets the atlas index of the clicked image. */
export function mountGallery({ canvas, cursor, classSelect, onPick }) {
  let atlas = null;
  let shown = []; // atlas indices on the sheet, in order
  let at = 0; // the keyboard cursor's position in `shown`

  function draw() {
    if (!atlas) return;
    const wanted = classSelect.value === 'all' ? null : Number(classSelect.value);
    shown = [];
    for (let i = 0; i < atlas.count; i++) if (wanted === null || atlas.labels[i] === wanted) shown.push(i);
    const rows = Math.max(1, Math.ceil(shown.length / COLUMNS));
    const { width, height } = atlas;
    canvas.width = COLUMNS * width;
    canvas.height = rows * height;
    const image = new ImageData(canvas.width, canvas.height);
    shown.forEach((index, k) => {
      const [left, top] = [(k % COLUMNS) * width, Math.floor(k / COLUMNS) * height];
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const gray = atlas.pixels[index * width * height + y * width + x];
          const at = ((top + y) * canvas.width + left + x) * 4;
          image.data.fill(gray, at, at + 3);
          image.data[at + 3] = 255;
        }
      }
    });
    canvas.getContext('2d').putImageData(image, 0, 0);
    at = 0;
    cursor.hidden = true;
  }

  function placeCursor() {
    const side = canvas.clientWidth / COLUMNS;
    Object.assign(cursor.style, {
      left: `${(at % COLUMNS) * side}px`,
      top: `${Math.floor(at / COLUMNS) * side}px`,
      width: `${side}px`,
      height: `${side}px`,
    });
    cursor.hidden = false;
    cursor.scrollIntoView({ block: 'nearest' });
  }

  classSelect.addEventListener('change', draw);
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS };
  canvas.addEventListener('keydown', (event) => {
    if (!shown.length) return;
    if (event.key in moves) {
      at = Math.min(shown.length - 1, Math.max(0, at + moves[event.key]));
      placeCursor();
    } else if (event.key === 'Enter' || event.key === ' ') {
      onPick(shown[at]);
    } else {
      return;
    }
    event.preventDefault();
  });
  // The cursor shows for keyboard focus only; a click picks directly and moves the cursor there.
  canvas.addEventListener('focus', () => shown.length && canvas.matches(':focus-visible') && placeCursor());
  canvas.addEventListener('blur', () => {
    cursor.hidden = true;
  });
  canvas.addEventListener('click', (event) => {
    if (!atlas) return;
    const rect = canvas.getBoundingClientRect();
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * COLUMNS);
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * (canvas.height / atlas.height));
    const index = shown[row * COLUMNS + col];
    if (index === undefined || col >= COLUMNS) return;
    at = row * COLUMNS + col;
    onPick(index);
  });

  return {
    /** Shows a new atlas ({ count, pixels, labels, width, height }) with the model's class names. */
    show(nextAtlas, classNames) {
      atlas = nextAtlas;
      classSelect.replaceChildren(
        new Option('all classes', 'all'),
        ...classNames.map((name, i) => new Option(name, String(i))),
      );
      draw();
    },
  };
}
