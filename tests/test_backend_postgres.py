"""The backend suites (`backend_cases`) on PostgreSQL logs: a fresh schema of the tests' server each."""

from __future__ import annotations

from typing import Any

import pytest

from backend_cases import CliCases, ReplayCases, StoreCases
from pg_helpers import admin, new_schema


class OnPostgres:
    @pytest.fixture
    def target(self, pg_log: str) -> str:
        return pg_log

    def raw(self, target: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with admin(target) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def tamper(self, target: str, seq: int, payload: str) -> None:
        with admin(target) as conn:
            conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update")
            conn.execute("UPDATE events SET payload = %s WHERE seq = %s", (payload, seq))
            conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update")

    def view_columns(self, target: str, view: str) -> list[str]:
        return [row[0] for row in self.raw(
            target, "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position", (view,))]

    def absent(self, target: str) -> str:
        return target.replace("schema=", f"schema={new_schema()}&old=").split("&old=")[0]


class TestStoreOnPostgres(OnPostgres, StoreCases):
    pass


class TestCliOnPostgres(OnPostgres, CliCases):
    pass


class TestReplayOnPostgres(OnPostgres, ReplayCases):
    pass
