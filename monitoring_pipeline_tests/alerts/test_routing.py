"""Routing rules and messages, without the network."""

import pytest

from monitoring_pipeline.alerts import alert_message, channels_for, dedupe_key, digest_message, policy_of

ALL = frozenset({"log", "slack", "email", "webhook"})


def test_severity_decides_the_channels_as_the_seed_says():
    policy = policy_of({})
    assert channels_for("critical", policy, ALL) == ["log", "slack", "email", "webhook"]
    assert channels_for("warning", policy, ALL) == ["log", "slack"]
    assert channels_for("info", policy, ALL) == ["log"]
    assert channels_for("critical", policy, frozenset({"log", "email"})) == ["log", "email"]  # only configured ones


def test_a_model_narrows_and_overrides_its_rules():
    policy = policy_of({"routes": ["log", "email"], "rules": {"warning": ["email"]}, "dedupe_hours": 2})
    assert channels_for("critical", policy, ALL) == ["log", "email"]
    assert channels_for("warning", policy, ALL) == ["log", "email"]
    assert policy.dedupe_hours == 2.0 and policy.digest


@pytest.mark.parametrize("config,message", [
    ({"routes": ["pager"]}, "alerts.routes: 'pager' is not a channel"),
    ({"rules": {"urgent": ["slack"]}}, "alerts.rules.urgent: not a severity"),
    ({"rules": {"critical": "slack"}}, "alerts.rules.critical: must be a list"),
    ({"dedupe_hours": -1}, "alerts.dedupe_hours: must be a number >= 0"),
    ({"digest": "yes"}, "alerts.digest: must be true or false"),
    ({"colour": 1}, "alerts.colour is not a known field"),
])
def test_a_bad_alerts_config_names_its_field(config, message):
    with pytest.raises(ValueError, match=message):
        policy_of(config)


def test_the_same_alert_on_another_day_has_the_same_dedupe_key():
    assert dedupe_key("m", "DRIFT_DETECTED", "data", ["b", "a"]) == dedupe_key("m", "DRIFT_DETECTED", "data", ["a", "b"])
    assert dedupe_key("m", "DRIFT_DETECTED", "data", ["a"]) != dedupe_key("m", "DRIFT_DETECTED", "concept", ["a"])


ALERT = {"alert_id": "abc123", "severity": "critical", "alert_type": "DRIFT_DETECTED", "model_name": "flights",
         "model_version": "v2", "drift_type": "data", "partition_key": "2026-01-04|flights",
         "affected_features": '["dep_time"]', "message": "data drift alert on 1 of 7 features",
         "recommended_action": "Retrain on recent labeled data.",
         "details": {"top_features": [{"feature": "dep_time", "method": "wasserstein", "effect_size": 0.52,
                                       "ref_mean": 1301.0, "cur_mean": 1544.0}],
                     "diagnosis": {"category": "data", "hypothesis": "The input data shifted.",
                                   "evidence": ["Feature dep_time mean shifted from 1301 to 1544 (+18.7%)"]}}}


def test_a_message_carries_model_severity_features_with_numbers_diagnosis_and_action():
    m = alert_message(ALERT)
    assert m.subject == "[critical] DRIFT_DETECTED flights 2026-01-04"
    for part in ("dep_time: wasserstein 0.52, mean 1301 -> 1544", "Diagnosis (data): The input data shifted.",
                 "- Feature dep_time mean shifted from 1301 to 1544 (+18.7%)",
                 "Recommended action: Retrain on recent labeled data.", "alerts ack abc123"):
        assert part in m.text
    assert m.payload["severity"] == "critical" and m.payload["custom_details"]["features"] == ["dep_time"]
    digest = digest_message([ALERT, {**ALERT, "alert_id": "def456"}], "2026-01-05")
    assert digest.subject == "[digest] 2 open warnings on 2026-01-05" and digest.text.count("Alert id:") == 2
