// The atlas gallery: the model's held-out images as one sheet of thumbnails, filtered by class; click to pick,
// or move a cursor with the arrow keys and press Enter.

/** Thumbnails per row, at most. */
const MAX_COLUMNS = 12;

/** The smallest thumbnail, in CSS pixels: 44 (a finger's target) on touch screens, else one image pixel per CSS pixel. */
const MIN_THUMBNAIL = { touch: 44, other: 28 };

const touchScreen = matchMedia('(any-pointer: coarse)');

/** Wires the gallery; `onPick(index)` gets the atlas index of the clicked image. */
export function mountGallery({ canvas, cursor, classSelect, onPick }) {
  let atlas = null;
  let shown = []; // atlas indices on the sheet, in order
  let at = 0; // the keyboard cursor's position in `shown`
  let columns = MAX_COLUMNS;

  /** As many columns as fit at the smallest thumbnail size, from 4 to 12. */
  function fittingColumns() {
    const smallest = touchScreen.matches ? MIN_THUMBNAIL.touch : MIN_THUMBNAIL.other;
    const width = canvas.parentElement.clientWidth;
    return width ? Math.min(MAX_COLUMNS, Math.max(4, Math.floor(width / smallest))) : MAX_COLUMNS;
  }

  function draw() {
    if (!atlas) return;
    columns = fittingColumns();
    canvas.dataset.columns = String(columns);
    const wanted = classSelect.value === 'all' ? null : Number(classSelect.value);
    shown = [];
    for (let i = 0; i < atlas.count; i++) if (wanted === null || atlas.labels[i] === wanted) shown.push(i);
    const rows = Math.max(1, Math.ceil(shown.length / columns));
    const { width, height } = atlas;
    canvas.width = columns * width;
    canvas.height = rows * height;
    const image = new ImageData(canvas.width, canvas.height);
    shown.forEach((index, k) => {
      const [left, top] = [(k % columns) * width, Math.floor(k / columns) * height];
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
    const side = canvas.clientWidth / columns;
    Object.assign(cursor.style, {
      left: `${(at % columns) * side}px`,
      top: `${Math.floor(at / columns) * side}px`,
      width: `${side}px`,
      height: `${side}px`,
    });
    cursor.hidden = false;
    cursor.scrollIntoView({ block: 'nearest' });
  }

  classSelect.addEventListener('change', draw);
  // A turned tablet or a resized window may fit another number of columns.
  new ResizeObserver(() => {
    if (atlas && fittingColumns() !== columns) draw();
  }).observe(canvas.parentElement);
  canvas.addEventListener('keydown', (event) => {
    if (!shown.length) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns };
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
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * columns);
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * (canvas.height / atlas.height));
    const index = shown[row * columns + col];
    if (index === undefined || col >= columns) return;
    at = row * columns + col;
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
