# Two commands for a fresh machine:
#   make train   set up .venv, meta-train Reptile on sine tasks, evaluate it, plot Figure 1
#   make test    set up .venv (with test tools), lint, run the whole pytest suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TIMESTAMP := $(shell date +%Y%m%d-%H%M%S)
RUN_DIR ?= runs/sine_reptile-$(TIMESTAMP)

.PHONY: setup setup-dev train test lint clean

# learn2learn 0.2.0 is built from source: its sdist's C files predate Python 3.11, so Cython 3
# regenerates them (build_ext), against the pinned numpy/torch already in the venv (--no-build-isolation,
# --no-deps). The old `gym` it imports is installed without `gym-notices`, whose banner only prints noise.
# Meta-World (the optional metaworld extra) is installed the same way: it pins an old mujoco, but steps
# correctly with the pinned one, and its other dependencies are already here.
PIP := $(BIN)/pip install -qq --disable-pip-version-check

$(VENV)/.runtime: requirements.txt pyproject.toml
	@echo "Setting up $(VENV): pinned dependencies, then learn2learn 0.2.0 built from source (about 2 minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps gym==0.26.2
	$(PIP) --no-deps metaworld==3.1.1
	$(PIP) --no-deps --no-build-isolation --global-option=build_ext learn2learn==0.2.0
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import learn2learn, lit_meta"
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

train: setup
	$(BIN)/python train.py fit --config configs/sine_reptile.yaml --run_dir $(RUN_DIR)
	$(BIN)/python evaluate.py --ckpt $(RUN_DIR)/checkpoints/last.ckpt --tasks 1000

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup-dev lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
