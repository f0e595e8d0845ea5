"""A document embedder that needs no download: signed feature hashing of tokens.

Each document (a token list as :func:`.modalities.load_text` yields it, or None for a
missing one) becomes one row of ``dim`` numbers: every distinct token adds ``1 + log
tf`` (its sublinear term frequency) with a sign to one of ``dim`` buckets, both chosen
by a MurmurHash3 of the token, and the row is scaled to unit length. The hash is
seeded and stable, so a row is the same in every process and on every machine
(Python's ``hash()`` of a string changes per process). Integer token ids hash apart
from the strings of their digits: ``1`` and ``"1"`` are different tokens.

A missing document is a row of NaN; an empty one (no tokens) a row of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.utils import murmurhash3_32

DEFAULT_DIM = 256
HASH_SEED = 0
_INT_PREFIX = "\x1fid:"  # ids hash as this prefix + digits, which no text token can be


def check_documents(docs) -> None:
    """ValueError naming the first document that is neither None nor a token list.

    A token list is a list or tuple of strings and integers (``bool`` is not a token).
    """
    if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
        raise ValueError(f"documents must be a list of token lists, got {type(docs).__name__}")
    for i, doc in enumerate(docs):
        if doc is not None and not isinstance(doc, (list, tuple)):
            raise ValueError(f"document {i} must be a token list or None, got {type(doc).__name__}")
    kinds = set(map(type, chain.from_iterable(d for d in docs if d is not None)))
    bad = kinds - {str, int}
    bad = {k for k in bad if not (issubclass(k, (int, np.integer)) and not issubclass(k, (bool, np.bool_)))}
    if bad:
        for i, doc in enumerate(docs):
            for token in doc or ():
                if type(token) in bad:
                    raise ValueError(f"document {i} holds a token of type {type(token).__name__} "
                                     f"({token!r}); tokens are strings or integer ids")


def _hash_key(token) -> str:
    return token if isinstance(token, str) else _INT_PREFIX + str(int(token))


def token_hashes(tokens: Sequence) -> np.ndarray:
    """Signed 32-bit MurmurHash3 of each token (strings and integer ids hash apart).

    >>> token_hashes(["1", 1]).tolist() != token_hashes([1, "1"]).tolist()
    True
    """
    return np.fromiter((murmurhash3_32(_hash_key(t), seed=HASH_SEED) for t in tokens),
                       dtype=np.int64, count=len(tokens))


def hashed_embedding(docs: Sequence, dim: int = DEFAULT_DIM) -> np.ndarray:
    """[len(docs), dim] float64 rows: signed hashed sublinear term frequencies, unit length.

    >>> e = hashed_embedding([["the", "cat"], ["the", "cat"], [], None], dim=16)
    >>> bool((e[0] == e[1]).all()), round(float(np.linalg.norm(e[0])), 12), float(abs(e[2]).sum())
    (True, 1.0, 0.0)
    >>> bool(np.isnan(e[3]).all())
    True
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    check_documents(docs)
    n, dim = len(docs), int(dim)
    missing = np.fromiter((d is None for d in docs), dtype=bool, count=n)
    lengths = np.fromiter((0 if d is None else len(d) for d in docs), dtype=np.int64, count=n)
    total = int(lengths.sum())
    if total == 0:
        out = np.zeros((n, dim), dtype=np.float64)
    else:
        flat = np.fromiter(chain.from_iterable(d for d in docs if d is not None), dtype=object, count=total)
        codes, vocabulary = pd.factorize(flat)  # 1 and "1" are distinct keys (1 != "1")
        hashes = token_hashes(vocabulary)
        bucket, sign = np.abs(hashes) % dim, np.where(hashes >= 0, 1.0, -1.0)
        # term frequencies per (document, token): a CSR matrix sums its repeated entries
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        tf = sparse.csr_matrix((np.ones(total), codes, indptr), shape=(n, len(vocabulary)))
        tf.sum_duplicates()
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(tf.indptr))
        weight = (1.0 + np.log(tf.data)) * sign[tf.indices]
        out = np.bincount(rows * dim + bucket[tf.indices], weights=weight, minlength=n * dim).reshape(n, dim)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        out /= np.where(norms > 0, norms, 1.0)[:, None]  # an empty document stays zeros
    out[missing] = np.nan
    return out
