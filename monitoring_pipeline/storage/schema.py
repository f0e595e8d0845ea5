"""Versioned migrations of the warehouse schema.

Each migration is applied once, in order, in its own transaction, and recorded in
``schema_version``. Migrations only add: no statement here drops or rewrites data.
Table and column names follow the seeds (Phase 14 task 14.1, T079/T082).

The same migrations build the warehouse on DuckDB and on PostgreSQL: statements are
written in SQL both accept, with DuckDB's type names, which ``dialect.ddl`` translates. On
PostgreSQL each migration's transaction first takes an advisory lock, so processes that
start on a new database at once apply each migration once.
"""

from __future__ import annotations

from .dialect import dialect_of, ddl, migration_begin

RESULT_KEYS = """
    asset_key VARCHAR,
    partition_key VARCHAR,
    run_id BIGINT,
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial schema", [
        "CREATE SEQUENCE run_id_seq START 1",
        """CREATE TABLE runs (
            run_id BIGINT PRIMARY KEY DEFAULT nextval('run_id_seq'),
            run_name VARCHAR NOT NULL,
            task_name VARCHAR,
            model_name VARCHAR,
            model_version VARCHAR,
            started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            config JSON,
            dagster_run_id VARCHAR
        )""",
        "CREATE SEQUENCE artifact_id_seq START 1",
        """CREATE TABLE artifacts (
            artifact_id BIGINT PRIMARY KEY DEFAULT nextval('artifact_id_seq'),
            run_id BIGINT,
            kind VARCHAR NOT NULL CHECK (kind IN ('profile', 'checkpoint', 'report')),
            name VARCHAR NOT NULL,
            model_name VARCHAR,
            model_version VARCHAR,
            asset_key VARCHAR,
            partition_key VARCHAR,
            payload JSON,
            path VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE TABLE inference_log (
            ts TIMESTAMP NOT NULL,
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            request_id VARCHAR NOT NULL,
            input_hash VARCHAR,
            features JSON,
            prediction VARCHAR,
            confidence DOUBLE,
            latency_ms DOUBLE,
            error VARCHAR
        )""",
        "CREATE INDEX inference_log_model_ts ON inference_log (model_name, ts)",
        """CREATE TABLE labels (
            request_id VARCHAR NOT NULL,
            label VARCHAR,
            labeled_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        "CREATE INDEX labels_request ON labels (request_id)",
        f"""CREATE TABLE ml_drift_history (
            drift_type VARCHAR NOT NULL CHECK (drift_type IN ('data', 'prediction', 'concept')),
            feature_name VARCHAR NOT NULL,
            method VARCHAR,
            test_statistic DOUBLE,
            p_value DOUBLE,
            effect_size DOUBLE,
            threshold DOUBLE,
            severity VARCHAR,
            drift_detected BOOLEAN NOT NULL,
            baseline_period VARCHAR,
            current_period VARCHAR,
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            {RESULT_KEYS}
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        f"""CREATE TABLE ml_performance_metrics (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            metric_name VARCHAR NOT NULL,
            metric_value DOUBLE,
            data_split VARCHAR,
            window_start TIMESTAMP,
            window_end TIMESTAMP,
            estimated BOOLEAN NOT NULL DEFAULT false,
            {RESULT_KEYS}
            measured_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        f"""CREATE TABLE ml_monitoring_alerts (
            alert_id VARCHAR PRIMARY KEY,
            severity VARCHAR NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
            alert_type VARCHAR NOT NULL CHECK (alert_type IN
                ('DRIFT_DETECTED', 'PERFORMANCE_DEGRADED', 'DATA_QUALITY_ISSUE', 'SLO_BREACH')),
            drift_type VARCHAR,
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            affected_features JSON,
            message VARCHAR NOT NULL,
            recommended_action VARCHAR,
            details JSON,
            {RESULT_KEYS}
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            acknowledged_at TIMESTAMP,
            acknowledged_by VARCHAR
        )""",
        f"""CREATE TABLE model_comparisons (
            model_name VARCHAR NOT NULL,
            baseline_version VARCHAR,
            candidate_version VARCHAR,
            metric_name VARCHAR NOT NULL,
            baseline_value DOUBLE,
            candidate_value DOUBLE,
            delta DOUBLE,
            status VARCHAR NOT NULL CHECK (status IN ('improved', 'unchanged', 'regressed')),
            ci_low DOUBLE,
            ci_high DOUBLE,
            significant BOOLEAN,
            verdict VARCHAR,
            {RESULT_KEYS}
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE TABLE model_registry (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR NOT NULL,
            stage VARCHAR NOT NULL CHECK (stage IN ('champion', 'challenger', 'archived')),
            framework VARCHAR,
            path VARCHAR,
            metrics JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (model_name, model_version)
        )""",
        """CREATE TABLE retraining_requests (
            request_id VARCHAR PRIMARY KEY,
            model_name VARCHAR NOT NULL,
            trigger VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            decision VARCHAR NOT NULL CHECK (decision IN ('launched', 'skipped')),
            run_key VARCHAR,
            dagster_run_id VARCHAR,
            details JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE VIEW drift_trend AS
            SELECT model_name, drift_type, feature_name, current_period AS day,
                   max(effect_size) AS max_effect_size,
                   bool_or(drift_detected) AS drift_detected,
                   count(*) AS reports
            FROM ml_drift_history
            GROUP BY model_name, drift_type, feature_name, current_period""",
        """CREATE VIEW performance_trend AS
            SELECT model_name, model_version, metric_name, estimated,
                   CAST(coalesce(window_start, measured_at) AS DATE) AS day,
                   avg(metric_value) AS metric_value,
                   count(*) AS measurements
            FROM ml_performance_metrics
            GROUP BY model_name, model_version, metric_name, estimated,
                     CAST(coalesce(window_start, measured_at) AS DATE)""",
    ]),
    (2, "model stage history", [
        """CREATE TABLE model_registry_events (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR NOT NULL,
            stage VARCHAR NOT NULL CHECK (stage IN ('champion', 'challenger', 'archived')),
            reason VARCHAR,
            changed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
    ]),
    (3, "alert deliveries", [
        """CREATE TABLE alert_deliveries (
            alert_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('delivered', 'failed', 'suppressed')),
            attempts INTEGER NOT NULL,
            error VARCHAR,
            dedupe_key VARCHAR,
            attempted_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        # The latest outcome per alert and channel: 'failed' means still undelivered there.
        # (Written with arg_max at first; this is the same view in SQL PostgreSQL takes too:
        # last_error is the latest attempt's error, NULL when that attempt had none.)
        """CREATE VIEW alert_delivery_status AS
            SELECT a.alert_id, a.channel, latest.status, a.attempts, a.last_attempt_at, a.delivered_at,
                   latest.error AS last_error
            FROM (SELECT alert_id, channel, sum(attempts) AS attempts, max(attempted_at) AS last_attempt_at,
                         max(CASE WHEN status = 'delivered' THEN attempted_at END) AS delivered_at
                  FROM alert_deliveries GROUP BY alert_id, channel) a
            JOIN (SELECT alert_id, channel, status, error,
                         row_number() OVER (PARTITION BY alert_id, channel ORDER BY attempted_at DESC) AS n
                  FROM alert_deliveries) latest
              ON latest.alert_id = a.alert_id AND latest.channel = a.channel AND latest.n = 1""",
    ]),
    # An alert is never deleted: open -> acknowledged -> resolved (and back to open when the
    # same finding is raised again). DuckDB cannot add a CHECK constraint with ALTER TABLE,
    # so the writers in results.py validate status against ALERT_STATUSES.
    (4, "alert lifecycle", [
        "ALTER TABLE ml_monitoring_alerts ADD COLUMN status VARCHAR NOT NULL DEFAULT 'open'",
        "ALTER TABLE ml_monitoring_alerts ADD COLUMN resolved_at TIMESTAMP",
        "ALTER TABLE ml_monitoring_alerts ADD COLUMN resolution VARCHAR",
        "UPDATE ml_monitoring_alerts SET status = 'acknowledged' WHERE acknowledged_at IS NOT NULL",
    ]),
    # The sha256 of a checkpoint's weights, recorded when it is registered: loading compares
    # the file with this, not with the card beside it. Older rows stay NULL and do not load.
    (5, "checkpoint hashes", [
        "ALTER TABLE model_registry ADD COLUMN weights_sha256 VARCHAR",
    ]),
    # A reference (inputs and outputs profiles, reference metrics) is stored in one
    # transaction that writes its reference_sets row last; readers take only a reference
    # with that row. References stored before, in three transactions, are marked complete
    # when all three parts are there in write order (inputs, then outputs, then metrics);
    # one a crash cut short is left unmarked, so it is rebuilt instead of half-used.
    (6, "complete references", [
        """CREATE TABLE reference_sets (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            inputs_id BIGINT NOT NULL,
            outputs_id BIGINT,
            run_id BIGINT,
            stored_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """INSERT INTO reference_sets (model_name, model_version, inputs_id, outputs_id, run_id, stored_at)
            SELECT i.model_name, i.model_version, i.artifact_id, o.artifact_id, i.run_id, i.created_at
            FROM artifacts i JOIN artifacts o
              ON o.name = 'reference_outputs' AND o.asset_key = i.asset_key AND o.model_name = i.model_name
             AND o.partition_key IS NOT DISTINCT FROM i.partition_key
             AND o.model_version IS NOT DISTINCT FROM i.model_version AND o.created_at >= i.created_at
            WHERE i.name = 'reference_inputs' AND i.asset_key = 'reference_profile' AND EXISTS (
                SELECT 1 FROM ml_performance_metrics m
                WHERE m.asset_key = 'reference_profile' AND m.partition_key IS NOT DISTINCT FROM i.partition_key
                  AND m.model_name = i.model_name AND m.model_version IS NOT DISTINCT FROM i.model_version
                  AND m.measured_at >= o.created_at)""",
    ]),
    # p_value holds the p-value after the result's own correction; p_value_raw the test's
    # own, so a report can correct data, output and concept drift tests together.
    (7, "raw p-values", [
        "ALTER TABLE ml_drift_history ADD COLUMN p_value_raw DOUBLE",
    ]),
    # Label-free estimates carry an interval, a reliability flag and their method; a window's
    # estimated rows are replaced by the realized ones when its labels arrive, and every
    # estimate is also kept in performance_estimates beside the realized value, once known.
    # A reference keeps a labeled sample (scores, predictions, labels, inputs) to calibrate on.
    (8, "performance estimates", [
        "ALTER TABLE ml_performance_metrics ADD COLUMN ci_low DOUBLE",
        "ALTER TABLE ml_performance_metrics ADD COLUMN ci_high DOUBLE",
        "ALTER TABLE ml_performance_metrics ADD COLUMN reliable BOOLEAN",
        "ALTER TABLE ml_performance_metrics ADD COLUMN method VARCHAR",
        "ALTER TABLE ml_performance_metrics ADD COLUMN reliability_reason VARCHAR",
        f"""CREATE TABLE performance_estimates (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            window_start TIMESTAMP,
            window_end TIMESTAMP,
            metric_name VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            estimate DOUBLE,
            ci_low DOUBLE,
            ci_high DOUBLE,
            reliable BOOLEAN NOT NULL,
            reliability_reason VARCHAR,
            n_rows INTEGER,
            realized DOUBLE,
            n_labeled INTEGER,
            details JSON,
            {RESULT_KEYS}
            estimated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            realized_at TIMESTAMP
        )""",
        """CREATE VIEW estimate_errors AS
            SELECT model_name, model_version, metric_name, method, CAST(window_start AS DATE) AS day,
                   estimate, ci_low, ci_high, realized, reliable, reliability_reason,
                   estimate - realized AS error,
                   realized BETWEEN ci_low AND ci_high AS covered
            FROM performance_estimates WHERE realized IS NOT NULL""",
        "ALTER TABLE reference_sets ADD COLUMN calibration_id BIGINT",
    ]),
    # The HTTP API's intake: a batch of predictions or labels accepted by the API is spooled to
    # a file first and ingested once (its batch_id recorded in the transaction that inserts its
    # rows). A baseline set through the API (or by hand) records who set it, when and why.
    (9, "api intake and baselines", [
        """CREATE TABLE ingested_batches (
            batch_id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL CHECK (kind IN ('inferences', 'labels')),
            rows_received INTEGER NOT NULL,
            rows_inserted INTEGER NOT NULL,
            accepted_at TIMESTAMP,
            ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE TABLE baseline_changes (
            model_name VARCHAR NOT NULL,
            model_version VARCHAR,
            basis VARCHAR NOT NULL,
            window_start TIMESTAMP,
            window_end TIMESTAMP,
            rows INTEGER,
            set_by VARCHAR NOT NULL,
            note VARCHAR,
            set_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        # the class scores a prediction came with (JSON: {class: probability} or a list), when sent
        "ALTER TABLE inference_log ADD COLUMN scores JSON",
        # what the person who acknowledged an alert wrote (the API's acknowledge takes a note)
        "ALTER TABLE ml_monitoring_alerts ADD COLUMN acknowledged_note VARCHAR",
    ]),
]

ALERT_STATUSES = ("open", "acknowledged", "resolved")

LATEST = MIGRATIONS[-1][0]


def current_version(conn) -> int:
    conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,
        applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""")
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn) -> int:
    """Apply the migrations this warehouse has not had yet; returns the version reached.

    Each migration is one transaction that reads the version again (under PostgreSQL's
    advisory lock: another process may have applied it while this one waited)."""
    dialect = dialect_of(conn)
    while True:
        for statement in migration_begin(dialect):
            conn.execute(statement)
        try:
            version = current_version(conn)
            if version > LATEST:
                raise RuntimeError(f"warehouse schema version {version} is newer than this code ({LATEST}); upgrade")
            pending = [m for m in MIGRATIONS if m[0] > version]
            if pending:
                number, name, statements = pending[0]
                for statement in statements:
                    conn.execute(ddl(statement, dialect))
                conn.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [number, name])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not pending:
            return version
