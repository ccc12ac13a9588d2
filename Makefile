# One entry point for set-up, the demo and the tests. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.posekit-installed

.PHONY: demo test test-fast lint bench clean browser java reference

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "posekit needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pinned first: the CPU build of torch; a bare `torch` requirement would pull CUDA wheels.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[plot,test]"
	touch $(STAMP)

## The main job: synthetic data -> check -> train -> evaluate -> predict, in ./demo
demo: $(STAMP)
	$(VENV)/bin/posekit demo --out demo

## Debian's chromium and chromium-driver, for the browser test of `posekit serve`'s page
## (apt-get, with sudo when not root; nothing is downloaded from browser vendors)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

## A Java runtime (17 or later) for PySpark, which `posekit actions` and its tests run on
java:
	@if command -v java >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	fi

## The reference implementations the parity tests compare against (test-only tools, never
## posekit dependencies): Ultralytics in an environment of its own, cached outside the clone.
## Its torchvision requirement is left out (the PyPI wheel is CUDA-linked and cannot import
## beside the CPU torch); its full opencv-python stays in that environment.
ULTRALYTICS   ?= 8.4.190
REF_CACHE     ?= $(HOME)/.cache/posekit-test
REF_ULTRA     := $(REF_CACHE)/ultralytics-$(ULTRALYTICS)
## Real multi-view recordings for the 3D tests, read from the published packages (never
## copied into the repository): Pose2Sim's demo (BSD-3) and DeepFly3D's fixture (LGPL). Only
## their data is used, so they are unpacked without dependencies and never imported.
POSE2SIM      ?= 0.8.4
DF3D          ?= 0.57
REF_P2S       := $(REF_CACHE)/pose2sim-$(POSE2SIM)
REF_DF3D      := $(REF_CACHE)/df3d-$(DF3D)
reference: $(REF_ULTRA)/.installed $(REF_P2S)/.installed $(REF_DF3D)/.installed

$(REF_P2S)/.installed: | $(STAMP)
	$(PY) -m pip install --quiet --no-deps --no-compile --target $(REF_P2S) "pose2sim==$(POSE2SIM)"
	touch $@

$(REF_DF3D)/.installed: | $(STAMP)
	$(PY) -m pip install --quiet --no-deps --no-compile --target $(REF_DF3D) "df3d==$(DF3D)"
	touch $@

$(REF_ULTRA)/.installed:
	test -x $(REF_ULTRA)/bin/python || $(PYTHON) -m venv $(REF_ULTRA)
	$(REF_ULTRA)/bin/python -m pip install --quiet "torch==2.13.0"
	$(REF_ULTRA)/bin/python -m pip install --quiet --no-deps "ultralytics==$(ULTRALYTICS)"
	$(REF_ULTRA)/bin/python -m pip install --quiet numpy matplotlib opencv-python pillow pyyaml \
	  requests psutil polars "ultralytics-thop>=2.2.3"
	touch $@

## The whole test suite (lint + fast and slow tests, the browser test included), as CI runs it
test: $(STAMP) browser java reference
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	POSEKIT_REQUIRE_BROWSER=1 POSEKIT_REQUIRE_REFERENCE=1 POSEKIT_ULTRALYTICS_PYTHON=$(REF_ULTRA)/bin/python \
	  POSEKIT_POSE2SIM=$(REF_P2S)/Pose2Sim POSEKIT_DF3D=$(REF_DF3D) $(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/synth_speed.py
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/predict_speed.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
