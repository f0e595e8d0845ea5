import pytest

from monitoring_pipeline.core.comparison import compare_models
from monitoring_pipeline.core.status import monitoring_status, summarize


def drift(status, names=()):
    rows = [{"name": n, "method": "jensenshannon", "effect_size": 0.3, "threshold": 0.1, "drifted": True}
            for n in names]
    return {"status": status, "features": rows, "n_features": 10}


improved = compare_models({"accuracy": 0.73}, {"accuracy": 0.76})
regressed = compare_models({"accuracy": 0.80}, {"accuracy": 0.70})


@pytest.mark.parametrize("comparison,report,expected", [
    (None, None, "ok"),
    (improved, drift("ok"), "ok"),
    (improved, drift("warn", ["a"]), "ok"),
    (improved, drift("alert", ["a"]), "warn"),
    (regressed, drift("ok"), "fail"),
    (regressed, drift("alert", ["a", "b"]), "fail"),
    (regressed, None, "fail"),
])
def test_t082_status_rule(comparison, report, expected):
    status, reasons = monitoring_status(comparison, report)
    assert status == expected
    if expected != "ok":
        assert reasons


def test_fail_reasons_say_why():
    status, reasons = monitoring_status(regressed, drift("alert", ["dep_time", "carrier"]))
    assert status == "fail"
    assert reasons[0] == "accuracy regressed by -10.0% (0.800 -> 0.700)"
    assert reasons[1].startswith("drift alert on 2 of 10 features: dep_time")


def test_summary_sentences():
    assert summarize(comparison=improved, drift=drift("ok")) == (
        "Candidate improved accuracy by +3.0%, no severe drift detected")
    assert summarize(comparison=regressed, drift=drift("alert", ["x"])) == (
        "Candidate regressed accuracy by -10.0%, severe drift on 1 features (x: jensenshannon 0.3)")
    unchanged = compare_models({"accuracy": 0.80}, {"accuracy": 0.805})
    assert summarize(comparison=unchanged) == "Candidate left accuracy unchanged (+0.5%)"
    assert summarize(eval_metrics={"accuracy": 0.76, "f1_macro": 0.7}) == "Model accuracy 0.760, f1_macro 0.700"
    assert summarize() == "Nothing was evaluated"


def test_further_warnings_make_a_clean_window_warn_but_never_hide_a_fail():
    assert monitoring_status(improved, drift("ok"), ["latency_p95_ms 180 is above its SLO of 100"]) == (
        "warn", ["latency_p95_ms 180 is above its SLO of 100"])
    status, reasons = monitoring_status(regressed, None, ["concept drift"])
    assert status == "fail" and reasons[-1] == "concept drift"


def test_an_unconfirmed_regression_warns_instead_of_failing():
    unconfirmed = {**regressed, "confirmed": False}
    status, reasons = monitoring_status(unconfirmed, drift("ok"))
    assert status == "warn" and "not significant" in reasons[0]
    assert monitoring_status(unconfirmed, drift("alert", ["a"]))[0] == "warn"


def test_failed_data_quality_fails_the_window_and_comes_first():
    status, reasons = monitoring_status(None, drift("warn", ["dep_time"]), ["latency above its SLO"],
                                        failures=["data quality failed: mean area out of range"])
    assert status == "fail"
    assert reasons[0].startswith("data quality failed") and "latency above its SLO" in reasons
    assert monitoring_status(None, None, ["latency above its SLO"])[0] == "warn"
    within_noise = dict(regressed, confirmed=False)  # a regression within noise never lifts a failure
    assert monitoring_status(within_noise, None, failures=["data quality failed: x"])[0] == "fail"
    assert monitoring_status(within_noise, None)[0] == "warn"
