"""The retraining policy: every trigger rule, the cooldown and the dedupe by incident."""

from datetime import datetime, timedelta

import pytest

from monitoring_pipeline.core.retraining import (
    Decision, Observation, PastDecision, RetrainingPolicy, decide_retraining)

T0 = datetime(2026, 3, 1)


def day(i, **kw) -> Observation:
    return Observation(window=f"2026-03-{i + 1:02d}", at=T0 + timedelta(days=i + 1), **kw)


def decide(observations, history=(), now=None, **policy) -> Decision:
    now = now or observations[-1].at
    return decide_retraining("m", observations, history, now, RetrainingPolicy(**policy))


def test_nothing_to_do_without_windows_or_without_a_trigger():
    assert not decide_retraining("m", [], [], T0).launch
    quiet = decide([day(0), day(1, accuracy=0.9, baseline_accuracy=0.92)])
    assert not quiet.launch and quiet.trigger is None and "no trigger" in quiet.reason


def test_critical_data_drift_launches_at_once():
    d = decide([day(0), day(1, drift="alert")])
    assert d.launch and (d.trigger, d.priority) == ("critical_data_drift", "immediate")
    assert d.run_key == "retrain|m|critical_data_drift|2026-03-02" and "input drift" in d.reason


def test_critical_model_drift_launches_at_once():
    d = decide([day(0), day(1, concept="alert")])
    assert d.launch and (d.trigger, d.priority) == ("critical_model_drift", "immediate")


def test_high_drift_must_persist_more_than_24_hours():
    one_day = decide([day(0), day(1, drift="warn"), day(2, drift="warn")])  # 24 h exactly: not more
    assert not one_day.launch and one_day.trigger is None
    longer = decide([day(0), day(1, drift="warn"), day(2, drift="warn")], persist_hours=23)
    assert longer.launch and (longer.trigger, longer.priority) == ("persistent_drift", "scheduled")
    three = decide([day(0), day(1, drift="warn"), day(2, drift="warn"), day(3, drift="warn")])
    assert three.launch and three.run_key.endswith("|2026-03-02")
    broken = decide([day(1, drift="warn"), day(2), day(3, drift="warn"), day(4, drift="warn")])
    assert not broken.launch  # the streak restarted on 03-04


def test_performance_degradation_beyond_its_threshold():
    within = decide([day(0, accuracy=0.86, baseline_accuracy=0.90)])
    assert not within.launch
    beyond = decide([day(0, accuracy=0.90, baseline_accuracy=0.90), day(1, accuracy=0.80, baseline_accuracy=0.90),
                     day(2), day(3, accuracy=0.82, baseline_accuracy=0.90)])
    assert beyond.launch and (beyond.trigger, beyond.priority) == ("performance_degradation", "scheduled")
    assert beyond.run_key.endswith("|2026-03-02")  # the degradation started there; 03-03 had no labels
    assert "0.820" in beyond.reason and "0.080" in beyond.reason


def test_critical_drift_wins_over_the_other_rules():
    d = decide([day(0, drift="warn"), day(1, drift="warn"), day(2, drift="alert", accuracy=0.5,
                                                                 baseline_accuracy=0.9)])
    assert d.trigger == "critical_data_drift"


def test_one_incident_is_launched_once():
    obs = [day(0), day(1, drift="alert")]
    first = decide(obs)
    history = [PastDecision(first.run_key, "launched", obs[-1].at)]
    later = obs + [day(2, drift="alert"), day(3, drift="alert")]
    again = decide(later, history, cooldown_hours=0)
    assert not again.launch and again.run_key == first.run_key and "already launched" in again.reason


def test_an_accuracy_drop_during_a_handled_drift_incident_is_new_evidence():
    obs = [day(0), day(1, drift="alert")]
    first = decide(obs)
    history = [PastDecision(first.run_key, "launched", obs[-1].at)]
    later = obs + [day(2, drift="alert", accuracy=0.5, baseline_accuracy=0.95)]
    d = decide(later, history, cooldown_hours=24)
    assert d.launch and d.trigger == "performance_degradation" and d.run_key.endswith("|2026-03-03")
    inside = decide(later, history, now=obs[-1].at + timedelta(hours=12), cooldown_hours=24)
    assert not inside.launch and "cooldown" in inside.reason
    handled = decide(later + [day(3, drift="alert", accuracy=0.5, baseline_accuracy=0.95)],
                     history + [PastDecision(d.run_key, "launched", later[-1].at)], cooldown_hours=0)
    assert not handled.launch and "already launched" in handled.reason


def test_a_skipped_decision_does_not_block_the_incident():
    obs = [day(0), day(1, drift="alert")]
    d = decide(obs, [PastDecision("retrain|m|critical_data_drift|2026-03-02", "skipped", obs[-1].at)])
    assert d.launch


def test_no_second_retraining_inside_the_cooldown():
    history = [PastDecision("retrain|m|critical_data_drift|2026-03-01", "launched", T0 + timedelta(days=2))]
    obs = [day(1, drift="alert"), day(2), day(3, concept="alert")]  # a new incident on 03-04
    inside = decide(obs, history, now=T0 + timedelta(days=2, hours=20), cooldown_hours=24)
    assert not inside.launch and inside.trigger == "critical_model_drift" and "cooldown" in inside.reason
    after = decide(obs, history, now=T0 + timedelta(days=3, hours=1), cooldown_hours=24)
    assert after.launch


def test_disabled_retraining_is_a_recorded_skip():
    d = decide([day(0, drift="alert")], enabled=False)
    assert not d.launch and d.trigger == "critical_data_drift" and "disabled" in d.reason


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1]])
def test_observations_are_read_in_time_order(order):
    obs = [day(0), day(1), day(2, drift="alert")]
    assert decide_retraining("m", [obs[i] for i in order], [], obs[-1].at).launch


def guess(i, estimate=0.70, high=0.78, reliable=True, baseline=0.90, **kw) -> Observation:
    """A window whose labels are pending, with a label-free estimate of its accuracy."""
    return day(i, estimated_accuracy=estimate, estimate_low=estimate - 0.06, estimate_high=high,
               estimate_reliable=reliable, baseline_accuracy=baseline, **kw)


def test_a_reliable_estimated_drop_that_persists_schedules_a_retraining():
    two = decide([day(0), guess(1), guess(2)])
    assert not two.launch and two.trigger is None  # two windows: not yet
    d = decide([day(0), guess(1), guess(2), guess(3, estimate=0.71)])
    assert d.launch and (d.trigger, d.priority) == ("estimated_performance_degradation", "scheduled")
    assert d.run_key == "retrain|m|estimated_performance_degradation|2026-03-02"
    assert d.reason.startswith("estimated accuracy 0.710 [0.650, 0.780] is 0.190 below the model's 0.900")
    assert "for 3 windows since 2026-03-02, labels pending" in d.reason
    history = [PastDecision(d.run_key, "launched", T0 + timedelta(days=4))]
    again = decide([day(0), guess(1), guess(2), guess(3), guess(4)], history, cooldown_hours=0)
    assert not again.launch and again.run_key == d.run_key  # one incident, however long it lasts
    assert decide([guess(1), guess(2)], estimate_windows=2).launch
    assert not decide([guess(1), guess(2), guess(3), guess(4)], estimate_windows=0).launch  # 0: never


def test_an_unreliable_estimate_never_counts_and_breaks_the_streak():
    assert decide([guess(i, estimate=0.3, high=0.4, reliable=False) for i in range(5)]).trigger is None
    broken = decide([guess(0), guess(1), guess(2, reliable=False), guess(3), guess(4)])
    assert broken.trigger is None
    assert decide([guess(0), guess(1), guess(2, reliable=False), guess(3), guess(4), guess(5)]).run_key.endswith(
        "|2026-03-04")


def test_an_estimate_must_be_clearly_below_the_baseline():
    wide = decide([guess(i, high=0.92) for i in range(4)])  # the interval reaches the baseline
    assert wide.trigger is None
    small = decide([guess(i, estimate=0.86, high=0.88) for i in range(4)])  # 0.04: within max_accuracy_drop
    assert small.trigger is None
    assert decide([guess(i, estimate=0.86, high=0.88) for i in range(4)], max_accuracy_drop=0.03).launch
    no_baseline = decide([guess(i, baseline=None) for i in range(4)])
    assert no_baseline.trigger is None


def test_a_realized_accuracy_takes_precedence_over_estimates():
    recovered = decide([guess(0), guess(1), guess(2), day(3, accuracy=0.89, baseline_accuracy=0.90)])
    assert recovered.trigger is None  # the labels say the model is fine
    measured = decide([guess(0), guess(1), guess(2), day(3, accuracy=0.70, baseline_accuracy=0.90)])
    assert measured.trigger == "performance_degradation"
    both = guess(3, accuracy=0.89)  # labels in: the estimate of the window no longer counts
    assert decide([guess(0), guess(1), guess(2), both]).trigger is None
