"""A throwaway PostgreSQL server for the tests, started from the local binaries.

It lives in a temporary directory (data, socket, log) and listens on a free 127.0.0.1 port.
Its superuser is trusted (no password is checked: a connection costs ~4 ms, not the ~10 of
SCRAM), except the role ``GUARDED_USER``, which must give ``GUARDED_PASSWORD``: the tests of a
wrong password use it. fsync is off: the server is thrown away. Text sorts as bytes (locale
C), as in DuckDB.

PostgreSQL refuses to run as root, and the tests here run as root: then the directory is
given to the ``postgres`` user and initdb / pg_ctl run under ``runuser -u postgres --``.
pytest-postgresql 10.0.0's executor cannot do that (it runs pg_ctl as the current user, with
no way to name another), so this module starts the server itself.

A server is stopped by ``stop()`` (the session fixture's finalizer), at interpreter exit
(atexit), and, if the test process is killed outright, by a small watchdog process that
waits for the end of a pipe the test process holds: when that process dies, however it dies,
the watchdog stops the server and removes its directory.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from monitoring_pipeline_tests.receivers import free_port

USER, PASSWORD = "monitoring", "not-checked"  # the URLs carry a password, as real ones do; trust ignores it
GUARDED_USER, GUARDED_PASSWORD = "guarded", "guarded-test-password"
HBA = """local all all trust
host all guarded 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    # Autovacuum's ANALYZE of any database writes pg_statistic in a transaction of its own, which moves
    # the server's pg_current_snapshot(): the API's reader then copies an unchanged warehouse again
    # (a needless copy, as postgres_copy.py says, never a missed one), and a test of "no change, no
    # copy" fails whenever autovacuum visits one of the session's dozens of databases. Measured (naptime 1 s):
    # with no client writing, the snapshot moved from 728 to 740 within 6 s of loading a table.
    # A throwaway server whose tests make every write themselves does not need it.
    "autovacuum": "off",
}
_WATCHDOG = """
import os, shutil, subprocess, sys
datadir, root, *pg_ctl = sys.argv[1:]
sys.stdin.buffer.read()  # returns when the test process closes the pipe or dies
if os.path.exists(os.path.join(datadir, "postmaster.pid")):
    subprocess.run([*pg_ctl, "stop", "-D", datadir, "-m", "immediate"], capture_output=True)
shutil.rmtree(root, ignore_errors=True)
"""


def find_binary(name: str) -> str:
    """``name`` on the PATH, else in Debian's /usr/lib/postgresql/<version>/bin (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return candidates[-1]
    raise RuntimeError(f"PostgreSQL's {name} is neither on the PATH nor in /usr/lib/postgresql/*/bin: install "
                       "Debian's postgresql package (.ci/run does), or run the tests with "
                       "MONITORING_TEST_BACKENDS=duckdb")


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as the ``postgres`` user when this process is root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser") or next((p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)),
                                              "runuser")
    return [runuser, "-u", "postgres", "--", *command]


class PostgresServer:
    """One PostgreSQL server in a temporary directory; ``url(database)`` names a database on it."""

    def __init__(self):
        self.root = self.datadir = None
        self.port: int | None = None
        self._watchdog: subprocess.Popen | None = None

    def start(self) -> PostgresServer:
        initdb, self._pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        self.root = Path(tempfile.mkdtemp(prefix="monitoring-pg-"))
        self.datadir, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._start_watchdog()
        atexit.register(self.stop)
        _run(_as_owner([initdb, "-D", str(self.datadir), f"--username={USER}", "--auth=trust", "--encoding=UTF8",
                        "--locale=C", "--no-sync"]), "initdb")
        (self.datadir / "pg_hba.conf").write_text(HBA)
        settings = {**SETTINGS, "unix_socket_directories": f"'{sockets}'"}
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        for attempt in range(5):  # a free port can be taken by another process before the server binds it
            self.port = free_port()
            with open(self.datadir / "postgresql.conf", "a") as conf:
                conf.write(f"port = {self.port}\n")
            started = subprocess.run(_as_owner([self._pg_ctl, "start", "-D", str(self.datadir), "-w", "-t", "120",
                                                "-l", str(self.root / "server.log")]), capture_output=True, text=True)
            if started.returncode == 0:
                with self.admin() as conn:
                    conn.execute(f"CREATE ROLE {GUARDED_USER} LOGIN SUPERUSER PASSWORD '{GUARDED_PASSWORD}'")
                return self
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            if "could not bind" not in log or attempt == 4:
                raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{log[-2000:]}")
        raise AssertionError("unreachable")

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(self.datadir), str(self.root),
                                           *_as_owner([self._pg_ctl])], stdin=subprocess.PIPE, start_new_session=True)

    def stop(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        if self._watchdog is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(_as_owner([self._pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w"]),
                           capture_output=True)
        self._watchdog.stdin.close()  # the watchdog removes the directory and exits
        self._watchdog.wait(timeout=60)
        self._watchdog = None

    def url(self, database: str = "postgres", *, password: str | None = PASSWORD, user: str = USER) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self):
        import psycopg

        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        name = name or f"test_{uuid.uuid4().hex[:16]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy_database(self, template: str, name: str, timeout: float = 60.0) -> str:
        """A new database copied from ``template`` (``CREATE DATABASE ... TEMPLATE``); returns its URL.

        PostgreSQL refuses the copy while any session is connected to the template (a process of
        the run that loaded it, still closing its connection; an autovacuum worker, on a server
        that runs one): the copy is retried until ``timeout``, and then the sessions still on the
        template are named."""
        import psycopg

        deadline = time.monotonic() + timeout
        with self.admin() as conn:
            while True:
                try:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    return self.url(name)
                except psycopg.errors.ObjectInUse:
                    if time.monotonic() > deadline:
                        sessions = conn.execute("SELECT pid, backend_type, application_name, state, query "
                                                "FROM pg_stat_activity WHERE datname = %s", [template]).fetchall()
                        raise RuntimeError(f"template {template} stayed in use for {timeout:.0f} s: {sessions}")
                    time.sleep(0.2)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")
