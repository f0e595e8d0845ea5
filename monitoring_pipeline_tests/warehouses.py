"""Helpers for tests that run on both warehouse backends (the fixtures are in conftest.py)."""

from __future__ import annotations

from contextlib import contextmanager

import duckdb
import pytest

from monitoring_pipeline.storage.warehouse import is_url
from monitoring_pipeline_tests.conftest import backends_to_test

needs_postgres = pytest.mark.skipif("postgres" not in backends_to_test(),
                                    reason="MONITORING_TEST_BACKENDS leaves PostgreSQL out")


@contextmanager
def bare_connection(target: str):
    """A connection to the warehouse ``target`` names that is NOT migrated (the code of an older schema
    version can set it up with ``schema.migrate`` patched); closed on exit."""
    if is_url(target):
        from monitoring_pipeline.storage.postgres import PostgresWarehouse

        conn = PostgresWarehouse(target)._open()
    else:
        conn = duckdb.connect(target)
    try:
        yield conn
    finally:
        conn.close()
