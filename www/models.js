// The models shipped in weights/, as index.html lists them (its inline start-up script reads the same list).

/** The shipped models ({ name, label, url, encoder }: a split model's two parts), in picker order; the first is the one a link without a model opens. */
export const SHIPPED_MODELS = JSON.parse(document.getElementById('shipped-models').textContent);

/** The shipped model called `name`, or undefined. */
export function findShippedModel(name) {
  return SHIPPED_MODELS.find((model) => model.name === name);
}
