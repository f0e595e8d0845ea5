"""Where each alert went: one row per delivery attempt run, per channel (history kept),
and the latest outcome per alert and channel (view ``alert_delivery_status``)."""

from __future__ import annotations

import pandas as pd

from .warehouse import Warehouse


def record_delivery(wh: Warehouse, alert_id: str, channel: str, status: str, attempts: int,
                    error: str | None = None, dedupe_key: str | None = None) -> None:
    wh.write(lambda conn: conn.execute(
        """INSERT INTO alert_deliveries (alert_id, channel, status, attempts, error, dedupe_key)
           VALUES (?, ?, ?, ?, ?, ?)""", [alert_id, channel, status, attempts, error, dedupe_key]))


def delivery_status(wh: Warehouse, alert_ids: list[str] | None = None) -> pd.DataFrame:
    """The latest outcome per (alert, channel)."""
    frame = wh.read("SELECT * FROM alert_delivery_status ORDER BY alert_id, channel")
    return frame if alert_ids is None else frame[frame["alert_id"].isin(alert_ids)].reset_index(drop=True)


def recently_delivered(wh: Warehouse, dedupe_key: str, channel: str, within_hours: float) -> str | None:
    """The alert id that went out on ``channel`` with the same dedupe key within the last
    ``within_hours`` (the warehouse's clock, the one that stamps attempted_at)."""
    row = wh.read("""SELECT alert_id FROM alert_deliveries WHERE dedupe_key = ? AND channel = ?
                     AND status = 'delivered'
                     AND attempted_at >= CAST(current_timestamp AS TIMESTAMP)
                                         - CAST(? AS DOUBLE PRECISION) * INTERVAL '1 second'
                     ORDER BY attempted_at DESC LIMIT 1""", [dedupe_key, channel, within_hours * 3600.0])
    return None if row.empty else str(row["alert_id"][0])
