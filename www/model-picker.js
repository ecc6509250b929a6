// Choosing a model: the shipped ones from a select, or the user's own .safetensors by file input or drop.

import { SHIPPED_MODELS, findShippedModel } from './models.js';

/** The largest model file the page opens, in bytes: a larger one is refused before it is read. */
export const MAX_MODEL_FILE_BYTES = 512 * 1024 * 1024;

/**
 * Wires the picker. `loadModel({ name, label, url | bytes })` resolves when the model is in use and
 * rejects when it was refused (it shows why); the select then returns to the model still in use.
 * `refuse(label, error)` shows why a file was refused before it reached `loadModel`.
 */
export function mountModelPicker({ select, fileInput, dropTarget, loadModel, refuse }) {
  let current = select.value;
  const kept = new Map(); // option value -> the File or bytes of a "Your file" entry that loaded

  for (const model of SHIPPED_MODELS) {
    const option = new Option(model.label, model.name);
    select.append(option);
  }

  async function load(source, optionValue) {
    try {
      await loadModel(source);
      current = optionValue;
      return true;
    } catch {
      return false; // the old model stays; loadModel has shown why
    } finally {
      select.value = current;
    }
  }

  /** Drops entry `value` unless it is the model in use (a same-named file was refused: the one in use stays). */
  function forget(value) {
    if (value !== current) {
      kept.delete(value);
      [...select.options].find((o) => o.value === value)?.remove();
    }
    select.value = current;
  }

  /**
   * Loads a user's own weights (or the lab's model) from bytes; its entry is in the select exactly while
   * its last load worked, and `again` (the File, or the bytes) loads it when it is picked again.
   */
  async function loadOwn(name, bytes, again = bytes) {
    const value = `file:${name}`;
    if (!(await load({ name, label: name, bytes }, value))) {
      forget(value);
      return false;
    }
    kept.set(value, again);
    if (![...select.options].some((o) => o.value === value)) select.append(new Option(`Your file: ${name}`, value));
    select.value = value;
    return true;
  }

  /** Reads and loads a user's file, refusing one over the size cap before it is read. */
  async function loadFile(file) {
    const value = `file:${file.name}`;
    if (file.size > MAX_MODEL_FILE_BYTES) {
      const mb = (n) => `${Math.round(n / 2 ** 20)} MB`;
      refuse(file.name, new Error(`the file is ${mb(file.size)}; the page opens model files up to ${mb(MAX_MODEL_FILE_BYTES)}`));
      return forget(value);
    }
    let bytes;
    try {
      bytes = await file.arrayBuffer();
    } catch (error) {
      refuse(file.name, new Error(`the file could not be read (${error.message})`));
      return forget(value);
    }
    return loadOwn(file.name, bytes, file);
  }

  select.addEventListener('change', () => {
    const shipped = findShippedModel(select.value);
    if (shipped) load(shipped, shipped.name);
    else if (kept.has(select.value)) {
      const again = kept.get(select.value);
      if (again instanceof Blob) loadFile(again);
      else loadOwn(select.value.slice('file:'.length), again);
    }
    else select.value = current;
  });

  fileInput.addEventListener('change', () => {
    const [file] = fileInput.files;
    fileInput.value = '';
    if (file) loadFile(file);
  });

  let depth = 0; // dragenter/dragleave fire for every child; count them to know when the drag leaves
  dropTarget.addEventListener('dragenter', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    depth += 1;
    dropTarget.classList.add('dragging-file');
  });
  dropTarget.addEventListener('dragover', (event) => {
    if (event.dataTransfer?.types.includes('Files')) event.preventDefault();
  });
  dropTarget.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) dropTarget.classList.remove('dragging-file');
  });
  dropTarget.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    dropTarget.classList.remove('dragging-file');
    const [file] = event.dataTransfer?.files ?? [];
    if (file) loadFile(file);
  });

  return {
    /** Loads weights-file bytes (an ArrayBuffer) as the user's own file, as the file input does. */
    loadOwn,
    /** Loads a shipped model by name (used at start-up). */
    loadShipped(name) {
      const shipped = findShippedModel(name) ?? SHIPPED_MODELS[0];
      select.value = shipped.name;
      return load(shipped, shipped.name);
    },
  };
}
