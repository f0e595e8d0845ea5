"""Summaries of labels: category counts and token counts, with a folded long tail.

Totals always merge exactly. A capped summary keeps the most frequent labels and
folds the rest into ``other``; after a merge a label that was folded in one shard
and kept in the other is undercounted by at most that shard's ``other`` count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from itertools import chain
from typing import ClassVar

import numpy as np
import pandas as pd

from .embedding import EmbeddingSummary
from .text_embedding import hashed_embedding

MAX_CATEGORIES = 200
MAX_TOKENS = 2000


def category_label(value) -> str:
    """The label a category is stored under: str(value), with 3.0 and 3 the same."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, (float, np.floating)) and value != value)


def _value_counts(values: pd.Series):
    """(value, count) pairs, missing values included (the caller drops them).

    For strings and other Python objects, counting the list in C (collections.Counter)
    is about 1.7x faster than Series.value_counts; both hash every row once.
    """
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        return Counter(values.to_numpy(dtype=object).tolist()).items()
    return values.value_counts(dropna=False, sort=False).items()


def _top(counter: Counter, keep: int, sort_key) -> tuple[tuple, int]:
    items = sorted(counter.items(), key=sort_key)
    kept = tuple(items[:keep])
    return kept, sum(c for _, c in items[keep:])


def _by_count(item) -> tuple:
    return (-item[1], str(item[0]))


def _merged(a: tuple, b: tuple, cap: int) -> tuple[tuple, int]:
    """Two count lists added up, capped at the longer one or ``cap``; returns (kept, folded)."""
    total = Counter(dict(a)) + Counter(dict(b))
    return _top(total, max(len(a), len(b), cap), _by_count)


@dataclass(frozen=True)
class CategoricalSummary:
    """Counts per category (most frequent first), the folded tail and missing rows."""

    counts: tuple[tuple[str, int], ...]
    other: int
    n_missing: int
    kind: ClassVar[str] = "categorical"

    @classmethod
    def from_series(
        cls,
        values: pd.Series,
        reference: CategoricalSummary | None = None,
        max_categories: int = MAX_CATEGORIES,
    ) -> CategoricalSummary:
        """Count labels; every reference category is kept, new ones up to the cap."""
        counts: Counter = Counter()
        for value, count in _value_counts(values):
            if count and not _is_missing(value):
                counts[category_label(value)] += int(count)
        return cls.from_counts(counts, len(values) - sum(counts.values()), reference, max_categories)

    @classmethod
    def from_counts(
        cls,
        counts: Counter,
        n_missing: int,
        reference: CategoricalSummary | None = None,
        max_categories: int = MAX_CATEGORIES,
    ) -> CategoricalSummary:
        """The summary of labels counted elsewhere (e.g. by a database's GROUP BY): ``counts``
        maps each label (as :func:`category_label` gives it) to its count."""
        known = reference.labels() if reference is not None else set()
        old = Counter({k: v for k, v in counts.items() if k in known})
        new = Counter({k: v for k, v in counts.items() if k not in known})
        kept_new, other = _top(new, max_categories, _by_count)
        kept = sorted([*old.items(), *kept_new], key=_by_count)
        return cls(tuple(kept), other, n_missing)

    def labels(self) -> set[str]:
        return {k for k, _ in self.counts}

    def as_counter(self) -> Counter:
        return Counter(dict(self.counts))

    @property
    def n_valid(self) -> int:
        return sum(c for _, c in self.counts) + self.other

    @property
    def n_rows(self) -> int:
        return self.n_valid + self.n_missing

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        kept, folded = _merged(self.counts, other.counts, MAX_CATEGORIES)
        return CategoricalSummary(kept, self.other + other.other + folded,
                                  self.n_missing + other.n_missing)

    def with_missing(self, n: int) -> CategoricalSummary:
        return replace(self, n_missing=self.n_missing + n)

    def to_dict(self) -> dict:
        return {"type": self.kind, "counts": [list(kv) for kv in self.counts],
                "other": self.other, "n_missing": self.n_missing}

    @classmethod
    def from_dict(cls, d: dict) -> CategoricalSummary:
        return cls(tuple((k, c) for k, c in d["counts"]), d["other"], d["n_missing"])


def _documents(docs: list, reference) -> EmbeddingSummary:
    """The documents' hashed bag-of-words embeddings, in the reference's basis when it has one."""
    basis = reference.documents if reference is not None else None
    return EmbeddingSummary.from_array(hashed_embedding(docs), basis, what="documents")


def _merged_documents(a: EmbeddingSummary | None, b: EmbeddingSummary | None) -> EmbeddingSummary | None:
    """The documents' embeddings of both sides, when both were made in one basis (against one
    reference); otherwise none, and the tokens' test falls back to counts (see drift)."""
    if a is None or b is None or a.basis.fingerprint() != b.basis.fingerprint():
        return None
    return a.merge(b)


@dataclass(frozen=True)
class TokenSummary:
    """Token occurrence counts of a set of documents, and document frequencies.

    Tokens are strings (from text) or integer ids (from ``input_ids``). ``n_oov``
    counts occurrences of tokens outside the reference's kept vocabulary; it is exact
    when the reference kept its whole vocabulary (``other == 0``) and otherwise an
    upper bound.

    Document frequencies read in documents rather than occurrences:

    - ``doc_counts``: for each kept token (the tokens of ``counts``, in that order),
      the number of documents containing it; merged by sum like ``counts``.
    - ``n_docs_new``: documents holding at least one token outside the reference's
      kept vocabulary (0 without a reference; ``has_reference`` says which).
    - ``n_docs_rare``: documents holding a token that no other document of this
      summary holds, one folded into ``other``, or (when the tail was folded) one that
      leaving the document out would fold (its count minus one falls below the
      smallest kept count, or ties it after the boundary name). By Good-Turing (leave one document
      out), ``n_docs_rare / n_docs`` estimates the share of new documents from the same
      source that would hold a token outside the kept vocabulary: the expected
      ``n_docs_new`` share when nothing shifted. Exact for one summary; after a merge
      an upper bound (a token found once in each of two shards counts in both).

    Profiles stored before document frequencies existed read with ``doc_counts``
    empty while ``counts`` is not; ``has_doc_stats`` is then False and nothing is
    inferred from them.
    """

    counts: tuple[tuple[str | int, int], ...]
    other: int
    n_docs: int
    n_oov: int
    doc_counts: tuple[tuple[str | int, int], ...] = ()
    n_docs_new: int = 0
    n_docs_rare: int = 0
    has_reference: bool = False
    documents: EmbeddingSummary | None = None  # the documents' hashed embeddings: the document-level test
    kind: ClassVar[str] = "tokens"

    @classmethod
    def from_documents(
        cls,
        docs: list[list],
        reference: TokenSummary | None = None,
        max_tokens: int = MAX_TOKENS,
    ) -> TokenSummary:
        n = len(docs)
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=n)
        total = int(lengths.sum())
        if total == 0:
            return cls((), 0, n, 0, (), 0, 0, reference is not None, _documents(docs, reference))
        # Each token is hashed once (pandas' factorize, where 1 and "1" stay apart as in
        # a dict); a document holds a token once per distinct (document, token) pair.
        codes, uniques = pd.factorize(np.fromiter(chain.from_iterable(docs), dtype=object, count=total))
        tokens = uniques.tolist()
        pairs = np.sort(np.repeat(np.arange(n, dtype=np.int64), lengths) * len(tokens) + codes)
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]  # sorted by document
        pair_doc, pair_token = np.divmod(pairs, len(tokens))
        count = np.bincount(codes, minlength=len(tokens))
        in_docs = np.bincount(pair_token, minlength=len(tokens))

        def n_docs_holding(mask: np.ndarray) -> int:
            held = pair_doc[mask[pair_token]]
            return int(held.size and 1 + np.count_nonzero(held[1:] != held[:-1]))

        n_oov = n_docs_new = 0
        if reference is not None:
            vocabulary = reference.vocabulary()
            outside = np.fromiter((t not in vocabulary for t in tokens), dtype=bool, count=len(tokens))
            n_oov, n_docs_new = int(count[outside].sum()), n_docs_holding(outside)
        kept, other = _top(Counter(dict(zip(tokens, count.tolist()))), max_tokens, _by_count)
        code = {t: i for i, t in enumerate(tokens)}
        kept_codes = np.fromiter((code[t] for t, _ in kept), dtype=np.int64, count=len(kept))
        rare = in_docs == 1
        if other:
            # Left out, a document takes one occurrence of each of its tokens away (most
            # tokens occur once in a document): a token then below the smallest kept
            # count is folded, and one then at it is kept only before the boundary
            # token in name order, as ranking by (count, name) does.
            folded = np.ones(len(tokens), dtype=bool)
            folded[kept_codes] = False
            cut, boundary = kept[-1][1], str(kept[-1][0])
            after = np.fromiter((str(t) > boundary for t in tokens), dtype=bool, count=len(tokens))
            rare |= folded | (count - 1 < cut) | ((count - 1 == cut) & after)
        doc_counts = tuple(zip((t for t, _ in kept), in_docs[kept_codes].tolist()))
        return cls(kept, other, n, n_oov, doc_counts, n_docs_new, n_docs_holding(rare), reference is not None,
                   _documents(docs, reference))

    @property
    def has_doc_stats(self) -> bool:
        """Whether the document frequencies are known (False for profiles stored before them)."""
        return bool(self.doc_counts) or not self.counts

    def vocabulary(self) -> set:
        return {t for t, _ in self.counts}

    def as_counter(self) -> Counter:
        return Counter(dict(self.counts))

    def doc_counter(self) -> Counter:
        return Counter(dict(self.doc_counts))

    def top(self, k: int) -> list:
        return [t for t, _ in self.counts[:k]]

    @property
    def n_tokens(self) -> int:
        return sum(c for _, c in self.counts) + self.other

    @property
    def oov_share(self) -> float:
        return self.n_oov / self.n_tokens if self.n_tokens else 0.0

    def merge(self, other: TokenSummary) -> TokenSummary:
        kept, folded = _merged(self.counts, other.counts, MAX_TOKENS)
        doc_counts: tuple = ()
        if self.has_doc_stats and other.has_doc_stats:
            in_docs = self.doc_counter() + other.doc_counter()
            doc_counts = tuple((t, in_docs[t]) for t, _ in kept)
        return TokenSummary(kept, self.other + other.other + folded,
                            self.n_docs + other.n_docs, self.n_oov + other.n_oov,
                            doc_counts, self.n_docs_new + other.n_docs_new,
                            self.n_docs_rare + other.n_docs_rare,
                            self.has_reference and other.has_reference,
                            _merged_documents(self.documents, other.documents))

    def to_dict(self) -> dict:
        return {"type": self.kind, "counts": [list(kv) for kv in self.counts],
                "other": self.other, "n_docs": self.n_docs, "n_oov": self.n_oov,
                "doc_counts": [c for _, c in self.doc_counts], "n_docs_new": self.n_docs_new,
                "n_docs_rare": self.n_docs_rare, "has_reference": self.has_reference,
                "documents": None if self.documents is None else self.documents.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TokenSummary:
        counts = tuple((t, c) for t, c in d["counts"])
        in_docs = d.get("doc_counts") or []
        if in_docs and len(in_docs) != len(counts):
            raise ValueError(f"a token summary has {len(in_docs)} document counts for {len(counts)} tokens")
        doc_counts = tuple((t, c) for (t, _), c in zip(counts, in_docs))
        documents = d.get("documents")
        return cls(counts, d["other"], d["n_docs"], d["n_oov"], doc_counts, d.get("n_docs_new", 0),
                   d.get("n_docs_rare", 0), d.get("has_reference", False),
                   None if documents is None else EmbeddingSummary.from_dict(documents))
