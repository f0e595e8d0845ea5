"""Drift of row embeddings: a multivariate two-sample test whose profile merges.

An embedding is one vector per row: a document's hashed bag of words or sentence
embedding, an image's pooled pixels or a network's penultimate layer. The reference
fixes a basis once:

- its centre and its top ``K`` principal axes, each scaled to unit variance, so a
  row ``x`` becomes ``z = (x - centre) @ axes.T / scales`` (at most 16 numbers);
- ``J`` random Fourier features of ``z`` (Rahimi and Recht, 2007),
  ``sqrt(2) cos(z @ W.T + b)`` with ``W ~ N(0, I / bandwidth^2)`` and the bandwidth
  the median distance between reference rows (the usual Gaussian-kernel heuristic).

Each row's test features are ``f = [z, cos features]``: the linear part sees a moved
mean, the Fourier part a changed shape (their mean difference estimates the Gaussian
kernel's MMD). A summary keeps the count, the sum of ``f`` and the sum of ``f f^T``,
which merge exactly by addition, and a bottom-k sample of the rows' ``z`` (each row
keyed by a uniform random number, so the sample of two shards merged is a uniform
sample of their union; a window of at most ``capacity`` rows is held whole, so its
merged shards hold exactly its rows).

The basis is fitted on a random half of the reference's rows and
the reference's summary holds only the other half. A basis fitted on the very rows it
then summarises would make them special: along principal axes chosen where those rows
happen to spread most, they spread more than any new row of the same distribution
(on 32 isotropic dimensions, 900 against 900 rows, that rejected about 90% of null
windows). With the halves apart, the summarised reference rows and the current rows
are exchangeable under H0, which is what both tests below need. A reference of fewer
than 20 rows is too small to split and is used whole.

The test (H0: the current rows come from the reference's distribution):

- while the current window is held whole in its sample (at most ``capacity`` rows),
  a permutation test over the pooled samples (the reference's sample and every
  current row), the statistic being the squared distance between the two means in
  the pooled sample's whitened coordinates: exact at any size;
- beyond that, Hotelling's two-sample T^2 on the sums with the pooled covariance and
  its F distribution. This is the analytic test of Chwialkowski et al. (2015, "Fast
  two-sample testing with analytic representations of probability measures") on
  Fourier features; its level at 1,000 to 1,000,000 rows is checked by simulation
  in ``benchmarks/calibration.py``.

The effect size is the Mahalanobis distance between the two mean feature vectors in
pooled standard deviations; with one feature and no Fourier part it is the mean shift
in standard deviations, which is how the thresholds read. Its noise floor is
``sqrt(rank * (1/n + 1/m))``, the expected distance between two samples of one
distribution (Hotelling's T^2 has mean ``rank`` under H0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats
from threadpoolctl import ThreadpoolController

from .stattests import SignificanceResult, sequential_p

MAX_AXES = 16  # principal axes kept from the reference
N_FOURIER = 32  # random Fourier features of the axes
CAPACITY = 1000  # rows kept in each summary's sample
_FIT_ROWS = 20_000  # reference rows the basis is fitted on (a deterministic sample)
MIN_SPLIT = 20  # references with fewer finite rows fit their basis on every row
_CHUNK = 16_384  # rows transformed at a time, to bound memory
_RELATIVE_EIGEN_FLOOR = 1e-9
_BATCH = 500


def numeric_rows(x, what: str = "embeddings", columns: str = "dimensions") -> np.ndarray:
    """``x`` as a 2-d numeric array (a torch tensor too), or a ValueError naming ``what`` is wrong."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise ValueError(f"{what} must be numbers, got values of type {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array [rows, {columns}], got shape {a.shape}")
    if a.shape[1] == 0:
        raise ValueError(f"{what} have no {columns} (shape {a.shape})")
    return a


def _same(a, b) -> bool:
    """Field-by-field equality of two dataclasses holding numpy arrays."""
    if type(a) is not type(b):
        return NotImplemented
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
               for x, y in zip(vars(a).values(), vars(b).values()))


@dataclass(frozen=True, eq=False)
class EmbeddingBasis:
    """The reference's coordinates and Fourier features (fixed once, shared by every window)."""

    centre: np.ndarray  # [D]
    axes: np.ndarray  # [K, D], orthonormal rows
    scales: np.ndarray  # [K], the reference's standard deviation along each axis
    frequencies: np.ndarray  # [J, K]
    phases: np.ndarray  # [J]
    bandwidth: float

    __eq__ = _same

    @property
    def dim(self) -> int:
        return int(self.centre.size)

    @property
    def n_features(self) -> int:
        return int(self.axes.shape[0] + self.phases.size)

    @classmethod
    def fit(cls, x: np.ndarray, seed: int = 0, max_axes: int = MAX_AXES, n_fourier: int = N_FOURIER):
        """The basis of reference rows ``x`` (finite rows; with fewer than two, a basis that
        only centres them, so any later row that differs shows)."""
        rng = np.random.default_rng(seed)
        if x.shape[0] < 2:
            centre = x[0].astype(np.float64) if x.shape[0] else np.zeros(x.shape[1])
            axes = np.eye(1, x.shape[1])
            frequencies = rng.standard_normal((n_fourier, 1))
            return cls(centre, axes, np.ones(1), frequencies, rng.uniform(0.0, 2 * math.pi, n_fourier), 1.0)
        if x.shape[0] > _FIT_ROWS:
            x = x[np.sort(rng.choice(x.shape[0], _FIT_ROWS, replace=False))]
        x = x.astype(np.float64)
        centre = x.mean(axis=0)
        centred = x - centre
        with one_thread():
            var, vectors = np.linalg.eigh(centred.T @ centred / max(1, x.shape[0] - 1))
        var, vectors = var[::-1], vectors[:, ::-1]  # largest first
        keep = var > _RELATIVE_EIGEN_FLOOR * max(float(var.max(initial=0.0)), 1e-300)
        k = int(min(max_axes, keep.sum()))
        if k == 0:  # a constant reference: one axis, unit scale, so any change shows
            axes, scales = np.eye(1, x.shape[1]), np.ones(1)
        else:
            axes, scales = vectors[:, :k].T.copy(), np.sqrt(var[:k])
        z = centred @ axes.T / scales
        sample = z[rng.choice(z.shape[0], min(z.shape[0], 2000), replace=False)]
        half = sample.shape[0] // 2
        dist = np.linalg.norm(sample[:half] - sample[half:2 * half], axis=1)
        positive = dist[dist > 0]
        bandwidth = float(np.median(positive)) if positive.size else 1.0
        frequencies = rng.standard_normal((n_fourier, axes.shape[0])) / bandwidth
        phases = rng.uniform(0.0, 2 * math.pi, n_fourier)
        return cls(centre, axes, scales, frequencies, phases, bandwidth)

    def coordinates(self, x: np.ndarray) -> np.ndarray:
        """Rows in the reference's scaled principal coordinates ``z``."""
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings have {x.shape[1]} dimensions; the reference has {self.dim}")
        # x @ A - centre @ A, without a centred copy of x
        return (x @ self.axes.T - self.centre @ self.axes.T) / self.scales

    def features(self, z: np.ndarray) -> np.ndarray:
        """Test features ``[z, sqrt(2) cos(z W^T + b)]`` of coordinates ``z``."""
        return np.hstack([z, math.sqrt(2.0) * np.cos(z @ self.frequencies.T + self.phases)])

    def fingerprint(self) -> tuple:
        return (self.dim, self.axes.shape[0], self.phases.size, round(self.bandwidth, 12),
                float(self.centre.sum()), float(self.frequencies.sum()))

    def to_dict(self) -> dict:
        return {"centre": self.centre.tolist(), "axes": self.axes.tolist(), "scales": self.scales.tolist(),
                "frequencies": self.frequencies.tolist(), "phases": self.phases.tolist(),
                "bandwidth": self.bandwidth}

    @classmethod
    def from_dict(cls, d: dict) -> EmbeddingBasis:
        k = len(d["scales"])
        return cls(np.asarray(d["centre"], dtype=np.float64),
                   np.asarray(d["axes"], dtype=np.float64).reshape(k, -1),
                   np.asarray(d["scales"], dtype=np.float64),
                   np.asarray(d["frequencies"], dtype=np.float64).reshape(len(d["phases"]), k),
                   np.asarray(d["phases"], dtype=np.float64), float(d["bandwidth"]))


def _bottom(keys: np.ndarray, rows: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    if keys.size <= capacity:
        order = np.argsort(keys, kind="stable")
    else:
        part = np.argpartition(keys, capacity - 1)[:capacity]
        order = part[np.argsort(keys[part], kind="stable")]
    return keys[order], rows[order]


@dataclass(frozen=True, eq=False)
class EmbeddingSummary:
    """Sums of the test features of a set of rows, and a bottom-k sample of their coordinates.

    ``count`` rows were finite; ``n_missing`` had a NaN, an infinity or were None.
    """

    basis: EmbeddingBasis
    count: int
    n_missing: int
    total: np.ndarray  # [P] sum of f
    outer: np.ndarray  # [P, P] sum of f f^T
    keys: np.ndarray  # [s] sample keys, ascending
    sample: np.ndarray  # [s, K] coordinates of the sampled rows
    capacity: int = CAPACITY
    kind: ClassVar[str] = "embedding"
    __eq__ = _same

    @classmethod
    def from_array(cls, x, reference: EmbeddingSummary | None = None, *, capacity: int = CAPACITY,
                   seed: int = 0, what: str = "embeddings") -> EmbeddingSummary:
        """The summary of rows ``x`` [N, D] in ``reference``'s basis, or, without one, the
        summary of half of them in a basis fitted on the other half (see the module)."""
        x = numeric_rows(x, what)
        finite = np.isfinite(x).all(axis=1)
        n_finite = int(finite.sum())
        rng = np.random.default_rng(seed)
        summarised = finite
        if reference is not None:
            basis, capacity = reference.basis, reference.capacity
        else:
            fit = finite
            if n_finite >= MIN_SPLIT:  # a random half, whatever the rows hold (see the module)
                halves = rng.random(x.shape[0]) < 0.5
                fit, summarised = finite & halves, finite & ~halves
            rows = np.flatnonzero(fit)
            if rows.size > _FIT_ROWS:
                rows = np.sort(rng.choice(rows, _FIT_ROWS, replace=False))
            basis = EmbeddingBasis.fit(x[rows].astype(np.float64), seed)
        p = basis.n_features
        total, outer = np.zeros(p), np.zeros((p, p))
        keys, sample = np.empty(0), np.empty((0, basis.axes.shape[0]))
        for start in range(0, x.shape[0], _CHUNK):
            block = x[start:start + _CHUNK]
            keep = summarised[start:start + _CHUNK]
            rows = block[keep] if not keep.all() else block
            if not rows.shape[0]:
                continue
            z = basis.coordinates(rows)
            f = basis.features(z)
            total += f.sum(axis=0)
            outer += f.T @ f
            # Each row gets a random key, drawn whatever it holds: a key derived from the
            # values would keep every copy of a repeated row together, in the sample or
            # out of it, and a reference with repeated rows would then be summarised by
            # a few of its distinct rows.
            keys, sample = _bottom(np.concatenate([keys, rng.random(rows.shape[0])]), np.vstack([sample, z]),
                                   capacity)
        return cls(basis, int(summarised.sum()), int(x.shape[0] - n_finite), total, outer, keys, sample, capacity)

    @property
    def n_rows(self) -> int:
        return self.count + self.n_missing

    @property
    def n_valid(self) -> int:
        return self.count

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    @property
    def whole(self) -> bool:
        """Whether the sample holds every row."""
        return self.count <= self.capacity

    def mean(self) -> np.ndarray:
        return self.total / self.count if self.count else np.zeros_like(self.total)

    def scatter(self) -> np.ndarray:
        """Sum of squared deviations from the mean, ``sum (f - mean)(f - mean)^T``."""
        if not self.count:
            return np.zeros_like(self.outer)
        return self.outer - np.outer(self.total, self.total) / self.count

    def merge(self, other: EmbeddingSummary) -> EmbeddingSummary:
        if self.basis.fingerprint() != other.basis.fingerprint():
            raise ValueError("cannot merge embedding summaries made against different references")
        keys, sample = _bottom(np.concatenate([self.keys, other.keys]), np.vstack([self.sample, other.sample]),
                               self.capacity)
        return EmbeddingSummary(self.basis, self.count + other.count, self.n_missing + other.n_missing,
                                self.total + other.total, self.outer + other.outer, keys, sample, self.capacity)

    def with_missing(self, n: int) -> EmbeddingSummary:
        return EmbeddingSummary(self.basis, self.count, self.n_missing + n, self.total, self.outer, self.keys,
                                self.sample, self.capacity)

    def to_dict(self) -> dict:
        return {"type": self.kind, "basis": self.basis.to_dict(), "count": self.count, "n_missing": self.n_missing,
                "total": self.total.tolist(), "outer": self.outer.tolist(), "keys": self.keys.tolist(),
                "sample": self.sample.tolist(), "capacity": self.capacity}

    @classmethod
    def from_dict(cls, d: dict) -> EmbeddingSummary:
        basis = EmbeddingBasis.from_dict(d["basis"])
        p, k = basis.n_features, basis.axes.shape[0]
        return cls(basis, int(d["count"]), int(d["n_missing"]), np.asarray(d["total"], dtype=np.float64),
                   np.asarray(d["outer"], dtype=np.float64).reshape(p, p), np.asarray(d["keys"], dtype=np.float64),
                   np.asarray(d["sample"], dtype=np.float64).reshape(-1, k), int(d["capacity"]))


# --- the test --------------------------------------------------------------------------

_THREADS: list = []


def one_thread():
    """Small linear algebra runs on one thread: OpenBLAS's threads spin against each
    other on a busy machine and make a 48 x 48 eigendecomposition 100 times slower."""
    if not _THREADS:
        _THREADS.append(ThreadpoolController())  # finding the libraries takes ~20 ms: once
    return _THREADS[0].limit(limits=1)


def _whitener(cov: np.ndarray) -> np.ndarray:
    """``M`` with ``M^T cov M = I`` on the covariance's numerical range ([P, rank])."""
    with one_thread():
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    top = float(values.max(initial=0.0))
    keep = values > max(top, 1e-300) * _RELATIVE_EIGEN_FLOOR * cov.shape[0]
    return vectors[:, keep] / np.sqrt(values[keep])


@dataclass(frozen=True)
class MeanDistance:
    distance: float  # Mahalanobis distance between the mean features, in pooled standard deviations
    rank: int  # dimensions of the pooled covariance's range
    n: int
    m: int

    @property
    def floor(self) -> float:
        if not self.n or not self.m:
            return 0.0
        return math.sqrt(self.rank * (1 / self.n + 1 / self.m))


def _check_pair(ref: EmbeddingSummary, cur: EmbeddingSummary) -> None:
    if ref.basis.fingerprint() != cur.basis.fingerprint():
        raise ValueError("the current embedding summary was not made against this reference's basis")


def mean_distance(ref: EmbeddingSummary, cur: EmbeddingSummary) -> MeanDistance:
    """The distance between the two mean feature vectors, with the pooled covariance of the sums."""
    _check_pair(ref, cur)
    n, m = ref.count, cur.count
    if n < 1 or m < 1:
        return MeanDistance(0.0, 0, n, m)
    dof = max(1, n + m - 2)
    whiten = _whitener((ref.scatter() + cur.scatter()) / dof)
    d = (cur.mean() - ref.mean()) @ whiten
    return MeanDistance(float(np.sqrt(d @ d)), int(whiten.shape[1]), n, m)


def _hotelling(ref: EmbeddingSummary, cur: EmbeddingSummary) -> SignificanceResult:
    md = mean_distance(ref, cur)
    n, m, rank = md.n, md.m, md.rank
    if rank == 0:
        return SignificanceResult("hotelling_rff", 0.0, 1.0)
    t2 = n * m / (n + m) * md.distance ** 2
    df2 = n + m - rank - 1
    if df2 < 1:
        p = float(stats.chi2.sf(t2, rank))
    else:
        p = float(stats.f.sf(t2 * df2 / (rank * (n + m - 2)), rank, df2))
    return SignificanceResult("hotelling_rff", t2, p)


def _permutation(ref: EmbeddingSummary, cur: EmbeddingSummary, rng: np.random.Generator,
                 n_permutations: int) -> SignificanceResult:
    basis = ref.basis
    # rows in the order of their values, so a window merged from shards (whose rows are
    # the same, with other keys) is tested exactly as the whole window is
    a, b = (x[np.lexsort(np.round(x, 9).T[::-1])] for x in (ref.sample, cur.sample))
    f = basis.features(np.vstack([a, b]))
    n, m = a.shape[0], b.shape[0]
    f = f - f.mean(axis=0)
    g = f @ _whitener(f.T @ f / max(1, n + m - 2))
    if g.shape[1] == 0:
        return SignificanceResult("permutation_rff", 0.0, 1.0)
    # With the pooled rows centred, mean_cur - mean_ref = sum_cur * (1/m + 1/n).
    scale = (1 / m + 1 / n) ** 2 * n * m / (n + m)
    stat = float(np.square(g[n:].sum(axis=0)).sum() * scale)
    total = n + m

    def simulate(size):
        draws = rng.random((size, total))
        # a random m-subset per row: the rows' m smallest draws
        chosen = (draws <= np.partition(draws, m - 1, axis=1)[:, m - 1:m]).astype(np.float64)
        with one_thread():
            return np.square(chosen @ g).sum(axis=1) * scale

    return SignificanceResult("permutation_rff", stat, sequential_p(stat, simulate, n_permutations, _BATCH))


def embedding_test(ref: EmbeddingSummary, cur: EmbeddingSummary, rng: np.random.Generator,
                   n_permutations: int = 2000) -> SignificanceResult:
    """p-value of "the current rows come from the reference's distribution" (see the module)."""
    _check_pair(ref, cur)
    if ref.count < 2 or cur.count < 1:
        return SignificanceResult("hotelling_rff", 0.0, 1.0)
    if cur.whole:
        return _permutation(ref, cur, rng, n_permutations)
    return _hotelling(ref, cur)


def witness_shares(ref: EmbeddingSummary, cur: EmbeddingSummary, n_bins: int = 10):
    """Both samples projected on the direction in which the means moved most (in the
    reference's scaled principal coordinates), binned on the reference sample's deciles:
    (bin edges, reference shares, current shares). This is what a plot of an embedding's
    drift can show: one axis along which the two sides differ."""
    _check_pair(ref, cur)
    k = ref.basis.axes.shape[0]
    direction = cur.mean()[:k] - ref.mean()[:k]
    norm = float(np.linalg.norm(direction))
    direction = direction / norm if norm > 0 else np.eye(1, k)[0]
    a, b = ref.sample @ direction, cur.sample @ direction
    if a.size == 0 or b.size == 0:
        return np.empty(0), np.ones(1), np.ones(1)
    edges = np.unique(np.quantile(a, np.arange(1, n_bins) / n_bins))
    shares = [np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1) / x.size
              for x in (a, b)]
    return edges, shares[0], shares[1]
