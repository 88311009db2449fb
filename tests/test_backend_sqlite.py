"""The backend suites (`backend_cases`) on SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from backend_cases import CliCases, ReplayCases, StoreCases
from actorlog.store.schema import TRIGGERS


class OnSqlite:
    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        return str(tmp_path / "log.db")

    def raw(self, target: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(target) as conn:
            return list(conn.execute(sql, params).fetchall())

    def tamper(self, target: str, seq: int, payload: str) -> None:
        conn = sqlite3.connect(target)
        try:
            conn.execute("DROP TRIGGER events_refuse_update")
            conn.execute("UPDATE events SET payload = ? WHERE seq = ?", (payload, seq))
            conn.execute(f"CREATE TRIGGER events_refuse_update {TRIGGERS['events_refuse_update']}")
            conn.commit()
        finally:
            conn.close()

    def view_columns(self, target: str, view: str) -> list[str]:
        return [row[1] for row in self.raw(target, f"PRAGMA table_info({view})")]

    def absent(self, target: str) -> str:
        return str(Path(target).with_name("absent.db"))


class TestStoreOnSqlite(OnSqlite, StoreCases):
    pass


class TestCliOnSqlite(OnSqlite, CliCases):
    pass


class TestReplayOnSqlite(OnSqlite, ReplayCases):
    pass
