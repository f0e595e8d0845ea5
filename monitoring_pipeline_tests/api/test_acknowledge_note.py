"""storage.results.acknowledge_alert keeps the acknowledging person's note (the API's acknowledge
body), and a second acknowledgement changes nothing."""

from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.results import acknowledge_alert


def test_the_note_is_kept_and_the_first_acknowledgement_stands(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.write(lambda conn: conn.execute("""INSERT INTO ml_monitoring_alerts (alert_id, severity, alert_type,
                                              model_name, message) VALUES ('a1', 'critical', 'SLO_BREACH', 'm', 'x')"""))
    assert acknowledge_alert(wh, "a1", "ann", "looking at the upstream feed")
    assert not acknowledge_alert(wh, "a1", "bob", "me too")
    assert not acknowledge_alert(wh, "missing", "bob")
    row = wh.read("SELECT status, acknowledged_by, acknowledged_note FROM ml_monitoring_alerts").iloc[0]
    assert (row["status"], row["acknowledged_by"], row["acknowledged_note"]) == (
        "acknowledged", "ann", "looking at the upstream feed")
