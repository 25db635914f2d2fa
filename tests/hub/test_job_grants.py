"""An agent job keeps the tools its creator approved up front, through the store and its fires."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.scheduler import ScheduleError
from hub.store import Store, jobs as sj
from hub.store.codec import inbound_from_json, inbound_to_json
from tests.hub.scheduler_support import ALICE, CONV, RecordingChannel, make_hub


async def test_granted_tools_are_stored_listed_and_carried_by_each_fire(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        job = await hub.scheduler.create_from_phrases(
            conversation=CONV,
            creator=ALICE,
            text="summarise the news",
            every="1h",
            action="agent",
            granted_tools=("fetch_url", "fetch_url", "read_file"),
        )
        assert job.granted_tools == ("fetch_url", "read_file")
        [listed] = await hub.scheduler.list_jobs(CONV)
        assert listed.granted_tools == ("fetch_url", "read_file")
        inbound = await hub.scheduler.fire(job.id, [job.next_run_at])
        assert inbound is not None and inbound.job is not None and not inbound.attended
        assert inbound.job.granted_tools == ("fetch_url", "read_file")
        # Recorded as the store records it, and read back after a restart the same way.
        assert inbound_from_json(inbound_to_json(inbound)).job == inbound.job


async def test_only_agent_jobs_can_be_granted_tools(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        with pytest.raises(ScheduleError, match="only a job that runs the agent"):
            await hub.scheduler.create_from_phrases(
                conversation=CONV, creator=ALICE, text="hi", when="in 1h", granted_tools=("run_command",)
            )


async def test_a_database_from_before_grants_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the jobs table as the previous release created it
        db.execute(
            "CREATE TABLE jobs (id VARCHAR PRIMARY KEY, conversation_key VARCHAR, channel VARCHAR,"
            " chat VARCHAR, thread VARCHAR, creator_id VARCHAR, creator_name VARCHAR, timezone VARCHAR,"
            " description VARCHAR, action VARCHAR, text VARCHAR, trigger_kind VARCHAR,"
            " trigger_args VARCHAR, next_run_at DATETIME, created_at DATETIME, last_fired_at DATETIME,"
            " fire_count INTEGER, active BOOLEAN, cancelled_at DATETIME, cancelled_by VARCHAR)"
        )
        db.execute(
            "INSERT INTO jobs VALUES ('abc234', 'test:c1', 'test', 'c1', NULL, 'u-alice', 'Alice', 'UTC',"
            " 'old', 'agent', 'old job', 'interval', '{\"seconds\": 3600}', '2099-01-01 00:00:00',"
            " '2026-01-01 00:00:00', NULL, 0, 1, NULL, NULL)"
        )
    async with Store(f"sqlite:///{path}") as store:
        await store.run_write(sj.ensure_tables)
        job = await store.run_read(lambda c: sj.get_job(c, "abc234"))
    assert job is not None and job.granted_tools == () and job.description == "old"
