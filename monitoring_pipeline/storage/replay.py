"""Clearing one model's history, for a simulation that replays from a clean slate.

Only the demo story calls this, on its own model: every table holding a
``model_name`` column loses that model's rows (and ``labels`` the labels of its
requests), in one transaction. Other models are untouched.
"""

from __future__ import annotations

from .warehouse import Warehouse


def forget_model(wh: Warehouse, model_name: str) -> dict[str, int]:
    """Delete ``model_name``'s rows everywhere; the number of rows deleted per table."""

    def work(conn) -> dict[str, int]:
        tables = [r[0] for r in conn.execute(
            """SELECT c.table_name FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
               WHERE c.column_name = 'model_name' AND t.table_type = 'BASE TABLE'
                 AND c.table_schema = current_schema() ORDER BY 1""").fetchall()]
        deleted = {"labels": conn.execute(
            "DELETE FROM labels WHERE request_id IN (SELECT request_id FROM inference_log WHERE model_name = ?)",
            [model_name]).fetchone()[0]}
        for table in tables:
            deleted[table] = conn.execute(f'DELETE FROM "{table}" WHERE model_name = ?', [model_name]).fetchone()[0]
        return deleted

    return wh.write(work)
