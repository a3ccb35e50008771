# One-command environment: `make run` (the main job) and `make test` (every test).
# Each target installs what it needs: Debian packages, a .venv with the ROS 2
# Kilted wheels and pinned dependencies, vision_msgs built from ../shared, and
# this package installed (not editable) so that its share folder exists.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
SOURCE ?= $(SHARED)/samples
MODEL ?= $(SHARED)/models/yolox_nano.onnx
APT_PACKAGES := cmake g++ libxml2-utils postgresql chromium chromium-driver

export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PACKAGE_FILES := setup.py setup.cfg package.xml resource/vehicle_detection \
	$(shell find vehicle_detection launch config -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: env test lint unit run bench clean

env: $(VENV)/.installed

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.apt: $(VENV)/.created Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	touch $@

$(VENV)/.deps: $(VENV)/.apt requirements.txt requirements-dev.txt
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

$(VENV)/.vision_msgs: $(VENV)/.deps
	@test -x $(SHARED)/ros/build-vision-msgs || \
	  { echo "error: $(SHARED)/ros/build-vision-msgs not found: put ../shared beside the checkout or set SHARED=" >&2; exit 1; }
	bash $(SHARED)/ros/build-vision-msgs $(VENV)
	touch $@

$(VENV)/.installed: $(VENV)/.vision_msgs $(PACKAGE_FILES)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .
	rm -rf build *.egg-info
	touch $@

lint: env
	$(PY) -m ruff check vehicle_detection test bench launch setup.py
	$(PY) -m mypy

test: env lint
	$(PY) -m pytest

run: env
	$(VENV)/bin/vehicle-detection demo --config config/config.yaml \
	  --source $(SOURCE) --model $(MODEL) --set camera_node.loop=true \
	  $(if $(DURATION),--duration $(DURATION))

bench: env
	$(PY) bench/transport.py
	$(PY) bench/detector.py
	$(PY) bench/cloud_load.py
	$(PY) bench/outbox.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
