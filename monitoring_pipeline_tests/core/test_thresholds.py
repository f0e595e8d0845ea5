"""Each method's thresholds are the same Gaussian mean shifts as JS 0.1 and 0.2."""

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from monitoring_pipeline.core.methods import DEFAULT_METHODS, METHODS


def _js(delta):
    p, q = stats.norm(0, 1).pdf, stats.norm(delta, 1).pdf

    def integrand(x):
        m = (p(x) + q(x)) / 2
        return 0.5 * (p(x) * np.log2(p(x) / m) + q(x) * np.log2(q(x) / m))

    return np.sqrt(integrate.quad(integrand, -12, 12 + delta)[0])


def _chi(delta):
    p, q = stats.norm(0, 1).pdf, stats.norm(delta, 1).pdf
    return np.sqrt(integrate.quad(lambda x: (p(x) - q(x)) ** 2 / ((p(x) + q(x)) / 2), -12, 12 + delta)[0])


EQUIVALENT = {
    "wasserstein": lambda d: d,
    "channel_mean": lambda d: d,
    "ks": lambda d: 2 * stats.norm.cdf(d / 2) - 1,
    "psi": lambda d: d * d,
    "kl_div": lambda d: d * d / 2 / np.log(2),
    "chisquare": _chi,
    "jensenshannon": _js,
}


@pytest.mark.parametrize("name", sorted(EQUIVALENT))
def test_thresholds_match_js_grades_for_a_gaussian_shift(name):
    warn_shift = optimize.brentq(lambda d: _js(d) - 0.1, 0.01, 3)
    alert_shift = optimize.brentq(lambda d: _js(d) - 0.2, 0.01, 3)
    method = METHODS[name]
    assert method.threshold == pytest.approx(EQUIVALENT[name](warn_shift), abs=0.0015)
    assert method.alert == pytest.approx(EQUIVALENT[name](alert_shift), abs=0.0015)


def test_every_kind_has_a_registered_default():
    for kind, name in DEFAULT_METHODS.items():
        assert kind in METHODS[name].kinds
        assert METHODS[name].threshold < METHODS[name].alert
