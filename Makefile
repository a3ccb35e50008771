# One-command environment: `make run` (the main job) and `make test` (every test).
# Each target installs what it needs: Debian packages, a .venv with the ROS 2
# Kilted wheels and pinned dependencies, vision_msgs built from ../shared, the
# ros2 command line and launch from ../shared, and this package installed (not
# editable, so that its share folder exists) with its executables linked into
# lib/vehicle_detection/, where `ros2 run` and launch_ros look (as colcon does).
# Test-only tools (PostgreSQL, HAProxy, Chromium, xmllint, systemd-analyze, pytest...) come
# with `make test`; `make bench` installs PostgreSQL and HAProxy (bench/cloud_load.py).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
SOURCE ?= $(SHARED)/samples
MODEL ?= $(SHARED)/models/yolox_nano.onnx
RUN_APT := cmake g++ libjemalloc2
BENCH_APT := postgresql haproxy
TEST_APT := libxml2-utils postgresql chromium chromium-driver systemd haproxy redis-server

export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PACKAGE_FILES := setup.py setup.cfg package.xml resource/vehicle_detection \
	$(shell find vehicle_detection launch config -type f -not -name '*.pyc' 2>/dev/null)

# Installs the Debian packages of $(1) that are missing.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: env test-env test lint unit run bench soak clean

env: $(VENV)/.installed

test-env: env $(VENV)/.apt-test $(VENV)/.deps-dev

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.apt: $(VENV)/.created Makefile
	$(call apt_install,$(RUN_APT))
	touch $@

$(VENV)/.apt-test: $(VENV)/.created Makefile
	$(call apt_install,$(TEST_APT))
	touch $@

$(VENV)/.apt-bench: $(VENV)/.created Makefile
	$(call apt_install,$(BENCH_APT))
	touch $@

$(VENV)/.deps: $(VENV)/.apt requirements.txt
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.deps-dev: $(VENV)/.deps requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(VENV)/.vision_msgs: $(VENV)/.deps
	@test -x $(SHARED)/ros/build-vision-msgs || \
	  { echo "error: $(SHARED)/ros/build-vision-msgs not found: put ../shared beside the checkout or set SHARED=" >&2; exit 1; }
	bash $(SHARED)/ros/build-vision-msgs $(VENV)
	touch $@

$(VENV)/.ros2cli: $(VENV)/.vision_msgs
	bash $(SHARED)/ros/install-ros2-cli $(VENV)
	touch $@

# pip puts console scripts in bin/; ROS looks in lib/<package>/ (colcon's
# install_scripts from setup.cfg, which pip ignores): link every one there.
$(VENV)/.installed: $(VENV)/.ros2cli $(PACKAGE_FILES)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .
	rm -rf build *.egg-info
	mkdir -p $(VENV)/lib/vehicle_detection
	for name in $$($(PY) -c "from importlib.metadata import distribution; \
	    print(*(e.name for e in distribution('vehicle_detection').entry_points \
	    if e.group == 'console_scripts'))"); do \
	  ln -sfn ../../bin/$$name $(VENV)/lib/vehicle_detection/$$name; done
	touch $@

lint: test-env
	$(PY) -m ruff check vehicle_detection test bench launch setup.py
	$(PY) -m mypy

test: test-env lint
	$(PY) -m pytest

# Counting lines for the demo (cloud_bridge_node.counting_lines), e.g. on the road clip:
# make run SOURCE=../shared/samples/highway_bridge_jitter.mp4 COUNTING_LINES='road 0,0.5 1,0.5 towards/away'
COUNTING_LINES ?=
# Port of the demo's cloud server (make run PORT=8100 when 8000 is taken).
PORT ?= 8000

run: env
	$(VENV)/bin/vehicle-detection demo --config config/config.yaml --port $(PORT) \
	  --source $(SOURCE) --model $(MODEL) --set camera_node.loop=true \
	  --set 'cloud_bridge_node.counting_lines=$(COUNTING_LINES)' \
	  $(if $(DURATION),--duration $(DURATION))

bench: env $(VENV)/.apt-bench
	$(PY) bench/transport.py
	$(PY) bench/foreign_camera.py
	$(PY) bench/detector.py
	$(PY) bench/cloud_load.py
	$(PY) bench/cloud_images.py
	$(PY) bench/operators.py
	$(PY) bench/outbox.py

# Accelerated soak of edge + server (bench/soak.py): steady, then with the link dropping
# a minute every five; SOAK_MINUTES each. Long and CPU-heavy: not part of `make bench`.
SOAK_MINUTES ?= 30

soak: env
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES) --flaky

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
