// Choosing a model: the shipped ones from a select, or the user's own .safetensors by file input or drop.

import { SHIPPED_MODELS, findShippedModel } from './models.js';

/**
 * Wires the picker. `loadModel({ name, label, url | bytes })` resolves when the model is in use and
 * rejects when it was refused; the select then returns to the model still in use.
 */
export function mountModelPicker({ select, fileInput, dropTarget, loadModel }) {
  let current = select.value;

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

  /** A user's own file (or the lab's model), listed in the select while it is in use; resolves to true when loaded. */
  async function loadOwn(name, bytes) {
    const value = `file:${name}`;
    let option = [...select.options].find((o) => o.value === value);
    const added = !option;
    if (added) {
      option = new Option(`Your file: ${name}`, value);
      select.append(option);
    }
    const loaded = await load({ name, label: name, bytes }, value);
    if (!loaded && added) option.remove();
    select.value = current;
    return loaded;
  }

  async function loadFile(file) {
    await loadOwn(file.name, await file.arrayBuffer());
  }

  select.addEventListener('change', () => {
    const shipped = findShippedModel(select.value);
    if (shipped) load(shipped, shipped.name);
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
