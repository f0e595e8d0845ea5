import numpy as np
import pytest
from scipy import stats

from monitoring_pipeline.core.numeric import Moments, NumericSummary
from monitoring_pipeline.core.stattests import benjamini_hochberg, chi2_two_sample, holm, ks_binned, welch_t


def test_chi2_matches_scipy_contingency_when_counts_are_large():
    ref, cur = np.array([300.0, 200, 100, 50]), np.array([120.0, 90, 70, 20])
    res = chi2_two_sample(ref, cur, np.random.default_rng(0), 2000)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert res.test == "chi2"
    assert res.statistic == pytest.approx(expected.statistic)
    assert res.p_value == pytest.approx(expected.pvalue)


def test_permutation_p_value_matches_the_exact_hypergeometric_p():
    # 2 x 2 table: the chi-square statistic is monotone in |a - E[a]|, so the exact
    # permutation p-value is a hypergeometric tail. The sequential estimate stops at
    # 20 exceedances (about 22% relative error each), so average 50 of them.
    ref, cur = np.array([95.0, 5.0]), np.array([6.0, 4.0])
    rng = np.random.default_rng(1)
    results = [chi2_two_sample(ref, cur, rng, 200_000) for _ in range(50)]
    assert {r.test for r in results} == {"chi2_permutation"}
    total, col0, n_cur = 110, 101, 10
    dist = stats.hypergeom(total, col0, n_cur)
    expected_a = n_cur * col0 / total
    support = np.arange(0, n_cur + 1)
    extreme = np.abs(support - expected_a) >= abs(6 - expected_a) - 1e-9
    exact = dist.pmf(support[extreme]).sum()
    assert np.mean([r.p_value for r in results]) == pytest.approx(exact, rel=0.15)
    # and the asymptotic chi-square p-value would have been far too small
    assert stats.chi2.sf(results[0].statistic, 1) < exact / 3


def test_permutation_p_values_are_valid_under_the_null():
    rng = np.random.default_rng(2)
    probs = np.array([0.7, 0.2, 0.07, 0.02, 0.01])
    ref = rng.multinomial(5000, probs).astype(float)
    p_values = [chi2_two_sample(ref, rng.multinomial(25, probs).astype(float), rng, 999).p_value
                for _ in range(400)]
    assert np.mean(np.array(p_values) <= 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)


def test_degenerate_tables_are_not_significant():
    rng = np.random.default_rng(3)
    assert chi2_two_sample(np.array([5.0, 0]), np.array([3.0, 0]), rng, 100).p_value == 1.0
    assert chi2_two_sample(np.array([5.0, 1]), np.array([0.0, 0]), rng, 100).p_value == 1.0


def test_binned_ks_is_bounded_by_the_exact_statistic_and_conservative():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.1, 1.2, 1500)
    ref = NumericSummary.from_array(a)
    cur = NumericSummary.from_array(b, ref.edges)
    res = ks_binned(ref, cur)
    exact = stats.ks_2samp(a, b, method="asymp")
    max_mass = max(max(ref.counts) / a.size, max(cur.counts) / b.size)
    assert res.statistic <= exact.statistic + 1e-12
    assert exact.statistic <= res.statistic + max_mass
    assert res.p_value >= exact.pvalue


def test_binned_ks_large_samples_use_the_kolmogorov_limit():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 200_000), rng.normal(0.01, 1, 200_000)
    ref = NumericSummary.from_array(a)
    res = ks_binned(ref, NumericSummary.from_array(b, ref.edges))
    exact = stats.ks_2samp(a, b, method="asymp")
    assert res.p_value >= exact.pvalue * 0.98


def test_welch_matches_scipy_on_raw_data():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 2, 25)
    res = welch_t(Moments.of(a), Moments.of(b))
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert res.statistic == pytest.approx(expected.statistic)
    assert res.p_value == pytest.approx(expected.pvalue)
    assert welch_t(Moments.of(a[:1]), Moments.of(b)) is None
    same = welch_t(Moments.of(np.ones(5)), Moments.of(np.ones(5)))
    assert same.p_value == 1.0
    assert welch_t(Moments.of(np.ones(5)), Moments.of(np.full(5, 2.0))).p_value == 0.0


def test_holm_and_bh_adjustments():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p))
    assert holm(np.array([])).size == 0


def test_holm_controls_family_wise_error_on_uniform_p_values():
    rng = np.random.default_rng(7)
    rejections = [np.any(holm(rng.random(25)) <= 0.05) for _ in range(4000)]
    assert np.mean(rejections) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 4000)


def test_ks_binned_handles_a_summary_without_its_own_reference():
    ref = NumericSummary.from_array(np.arange(100.0))
    cur = NumericSummary.from_array(np.arange(100.0) + 0.5)  # other edges: interpolated
    res = ks_binned(ref, cur)
    assert res.statistic < 0.05 and res.p_value > 0.5


def test_token_test_counts_each_document_once():
    from monitoring_pipeline.core.stattests import chi2_per_document

    ref, cur = np.array([300.0, 200, 100]), np.array([100.0, 120, 80])
    plain = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    res = chi2_per_document(ref, cur, mean_doc_length=10.0)
    assert res.statistic == pytest.approx(plain.statistic / 10)
    assert res.p_value == pytest.approx(stats.chi2.sf(plain.statistic / 10, 2))
    assert res.p_value > plain.pvalue
