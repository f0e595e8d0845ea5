"""When to retrain: the seed's trigger rules (Phase 14, task 14.9) as one pure function.

1. Critical data drift (a window's input drift at alert severity): retrain at once.
2. Critical model drift (concept drift at alert severity): retrain at once.
3. High drift (warn or worse) persisting longer than ``persist_hours``: schedule a retraining.
4. Performance degradation: realized accuracy below the model's own baseline accuracy
   by more than ``max_accuracy_drop``: schedule a retraining.
5. Estimated performance degradation: before labels arrive, a reliable label-free estimate
   that is more than ``max_accuracy_drop`` below the baseline, with the whole interval below
   it, for ``estimate_windows`` windows in a row: schedule a retraining. An unreliable
   estimate never counts (and breaks the streak); a realized accuracy takes precedence.

An incident is identified by its trigger and the window it started in, so a drift that
lasts a week is one incident, not seven (dedupe by run key). A model retrained less
than ``cooldown_hours`` ago is not retrained again, whatever the trigger. Every
decision on an incident, launched or skipped, carries its reason, to be recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

HIGH = ("warn", "alert")


@dataclass(frozen=True)
class RetrainingPolicy:
    enabled: bool = True
    cooldown_hours: float = 24.0
    persist_hours: float = 24.0
    max_accuracy_drop: float = 0.05
    estimate_windows: int = 3  # consecutive windows of a reliable estimated drop to act on; 0: never


@dataclass(frozen=True)
class Observation:
    """What one monitoring window found: drift severities (ok | warn | alert) and accuracy."""

    window: str  # the window's key, e.g. "2026-03-02"
    at: datetime  # when the window ended
    drift: str = "ok"
    concept: str = "ok"
    accuracy: float | None = None  # realized, None until labels are in
    baseline_accuracy: float | None = None  # the serving model's accuracy on its own holdout
    estimated_accuracy: float | None = None  # label-free estimate, while labels are pending
    estimate_low: float | None = None  # its interval
    estimate_high: float | None = None
    estimate_reliable: bool = False


@dataclass(frozen=True)
class PastDecision:
    run_key: str | None
    decision: str  # launched | skipped
    decided_at: datetime


@dataclass(frozen=True)
class Decision:
    model_name: str
    launch: bool
    trigger: str | None  # None: nothing to act on
    priority: str | None  # immediate | scheduled
    reason: str
    run_key: str | None
    window: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _streak(observations: Sequence[Observation], field: str, levels: tuple[str, ...]) -> list[Observation]:
    """The latest observations, newest last, whose ``field`` stayed within ``levels``."""
    run: list[Observation] = []
    for obs in reversed(observations):
        if getattr(obs, field) not in levels:
            break
        run.append(obs)
    return run[::-1]


def _estimated_drop(obs: Observation, policy: RetrainingPolicy) -> bool:
    """Whether a window without labels has a reliable estimate clearly below the baseline:
    more than ``max_accuracy_drop`` below it, and the interval's upper end below it too."""
    if obs.accuracy is not None or not obs.estimate_reliable or obs.baseline_accuracy is None:
        return False
    if obs.estimated_accuracy is None or obs.estimate_high is None:
        return False
    return (obs.baseline_accuracy - obs.estimated_accuracy > policy.max_accuracy_drop
            and obs.estimate_high < obs.baseline_accuracy)


def _incidents(observations: Sequence[Observation], policy: RetrainingPolicy):
    """Every (trigger, priority, reason, first window of the incident) that applies to
    the latest window, the most urgent first."""
    latest = observations[-1]
    for field, trigger, what in (("drift", "critical_data_drift", "input drift"),
                                 ("concept", "critical_model_drift", "concept drift")):
        if getattr(latest, field) == "alert":
            start = _streak(observations, field, ("alert",))[0]
            yield trigger, "immediate", f"critical {what} in window {latest.window}", start.window
    high = _streak(observations, "drift", HIGH) if latest.drift != "alert" else []  # alert: the critical incident
    if high:
        lasted = latest.at - high[0].at
        if lasted > timedelta(hours=policy.persist_hours):
            hours = lasted.total_seconds() / 3600
            yield ("persistent_drift", "scheduled",
                   f"high input drift since window {high[0].window} ({hours:.0f} h > {policy.persist_hours:g} h)",
                   high[0].window)
    if latest.accuracy is not None and latest.baseline_accuracy is not None:
        drop = latest.baseline_accuracy - latest.accuracy
        if drop > policy.max_accuracy_drop:
            start = latest
            for obs in reversed(observations):  # back to the first degraded window of this streak
                if obs.accuracy is None or obs.baseline_accuracy is None:
                    continue
                if obs.baseline_accuracy - obs.accuracy <= policy.max_accuracy_drop:
                    break
                start = obs
            yield ("performance_degradation", "scheduled",
                   f"accuracy {latest.accuracy:.3f} is {drop:.3f} below the model's {latest.baseline_accuracy:.3f} "
                   f"(more than {policy.max_accuracy_drop:g}) in window {latest.window}", start.window)
    if policy.estimate_windows > 0:
        streak: list[Observation] = []
        for obs in reversed(observations):
            if not _estimated_drop(obs, policy):
                break
            streak.append(obs)
        if len(streak) >= policy.estimate_windows:
            start, base = streak[-1], latest.baseline_accuracy
            low = f"{latest.estimate_low:.3f}" if latest.estimate_low is not None else ".."
            yield ("estimated_performance_degradation", "scheduled",
                   f"estimated accuracy {latest.estimated_accuracy:.3f} [{low}, {latest.estimate_high:.3f}] is "
                   f"{base - latest.estimated_accuracy:.3f} below the model's {base:.3f} (more than "
                   f"{policy.max_accuracy_drop:g}) for {len(streak)} windows since {start.window}, labels pending",
                   start.window)


def decide_retraining(
    model_name: str,
    observations: Sequence[Observation],
    history: Sequence[PastDecision],
    now: datetime,
    policy: RetrainingPolicy = RetrainingPolicy(),
) -> Decision:
    """Whether to launch a retraining of ``model_name`` now, and why.

    ``observations`` are the model's monitoring windows, oldest first; ``history`` its
    past decisions. The returned run key names the incident: a second decision on the
    same incident is skipped as a duplicate, and the next trigger that applies is
    considered instead: an accuracy drop found while an already handled drift incident
    lasts is new evidence.
    """
    observations = sorted(observations, key=lambda o: o.at)
    if not observations:
        return Decision(model_name, False, None, None, "no monitoring windows yet", None, None)
    window = observations[-1].window
    launched_keys = {p.run_key for p in history if p.decision == "launched"}
    found = list(_incidents(observations, policy))
    if not found:
        return Decision(model_name, False, None, None, "no trigger: drift and accuracy within bounds", None, window)
    open_ = [f for f in found if f"retrain|{model_name}|{f[0]}|{f[3]}" not in launched_keys]
    trigger, priority, reason, start = (open_ or found)[0]
    run_key = f"retrain|{model_name}|{trigger}|{start}"
    if not policy.enabled:
        return Decision(model_name, False, trigger, priority, f"{reason}; retraining is disabled for this model",
                        run_key, window)
    if run_key in launched_keys:
        return Decision(model_name, False, trigger, priority, f"{reason}; already launched for this incident",
                        run_key, window)
    launched = [p.decided_at for p in history if p.decision == "launched"]
    if launched:
        last = max(launched)
        until = last + timedelta(hours=policy.cooldown_hours)
        if now < until:
            return Decision(model_name, False, trigger, priority,
                            f"{reason}; in cooldown after the retraining launched at {last:%Y-%m-%d %H:%M} "
                            f"(next allowed {until:%Y-%m-%d %H:%M})", run_key, window)
    return Decision(model_name, True, trigger, priority, reason, run_key, window)
