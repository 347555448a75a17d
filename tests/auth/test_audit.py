"""The disclosure audit against real databases: a SQLite file, and a schema of its own on PostgreSQL.

Tampering is done the way an intruder would: raw SQL on the stored tables, behind the audit's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from auth.audit import (
    AuditConfig,
    AuditEntry,
    AuditFilter,
    AuditLog,
    AuditRecord,
    VerifyReport,
    mask_subject,
)
from auth.audit import sqlite as audit_sqlite
from auth.audit.chain import canonical, record_hash
from auth.audit.entry import entry_values
from auth.audit.postgres import PostgresAppend
from auth.audit.store import ChainHead, link
from gateway.config import parse_config
from gateway.errors import AuditUnavailable, ConfigError
from tests.auth.databases import fresh_postgres_schema
from tests.auth.samples import disclosure
from tests.gateway.faults import Fault, FaultProxy

NOW = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
CST = dt.timezone(dt.timedelta(hours=8))
SEAL_KEY = "sealed-by-the-audit-office-of-the-province-2026"


def _entry(n: int, **changes: Any) -> AuditEntry:
    return dataclasses.replace(disclosure(n, NOW + dt.timedelta(seconds=n)), **changes)


@dataclass
class Store:
    """The database under test, and a connection of the test's own for counting and tampering."""

    backend: str
    url: str
    schema: str | None
    engine: AsyncEngine

    def config(self, **changes: Any) -> AuditConfig:
        return AuditConfig(url=self.url, db_schema=self.schema, write_timeout="5s", **changes)

    async def sql(self, statement: str, **params: Any) -> Any:
        """Run raw SQL; ``{records}``, ``{head}``, ``{checkpoints}`` name the audit's tables."""
        prefix = f"{self.schema}." if self.schema else ""
        names = {t: f"{prefix}onewindow_audit_{t}" for t in ("records", "head", "checkpoints")}
        async with self.engine.begin() as conn:
            result = await conn.execute(text(statement.format(**names)), params)
            return result.all() if result.returns_rows else None

    async def count(self) -> int:
        rows = await self.sql("SELECT count(*) FROM {records}")
        return int(rows[0][0])


@contextlib.asynccontextmanager
async def _postgres_store(url: str) -> AsyncIterator[Store]:
    """A fresh schema on the PostgreSQL server, dropped afterwards."""
    async with fresh_postgres_schema(url, "ow_audit") as (schema, engine):
        yield Store("postgresql", url, schema, engine)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
        engine = create_async_engine(url)
        yield Store("sqlite", url, None, engine)
        await engine.dispose()
        return
    async with _postgres_store(request.getfixturevalue("postgres_url")) as postgres:
        yield postgres


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[Store]:
    async with _postgres_store(postgres_url) as postgres:
        yield postgres


MakeLog = Callable[..., Awaitable[AuditLog]]


@pytest.fixture
def make_log(store: Store, exit_stack: contextlib.AsyncExitStack) -> MakeLog:
    """Open audit logs on the test database, each with an engine of its own unless given one; closed afterwards."""

    async def make(*, engine: AsyncEngine | None = None, **changes: Any) -> AuditLog:
        return await exit_stack.enter_async_context(AuditLog(store.config(**changes), engine=engine))

    return make


def _count_transactions(store: Store) -> Callable[[], Awaitable[int]]:
    """The transactions that wrote records from now on: on PostgreSQL the server's own count (the distinct ``xmin``
    of the rows; an append in one statement makes no commit event), elsewhere the engine's commit events."""
    commits = [0]

    def count(*_: Any) -> None:
        commits[0] += 1

    event.listen(store.engine.sync_engine, "commit", count)

    async def transactions() -> int:
        if store.backend == "postgresql":
            rows = await store.sql("SELECT count(DISTINCT xmin::text) FROM {records}")
            return int(rows[0][0])
        return commits[0]

    return transactions


# --- group commit ---------------------------------------------------------------------------------------------


async def test_concurrent_writes_share_a_few_transactions(store: Store, make_log: MakeLog) -> None:
    log = await make_log(engine=store.engine)
    count_transactions = _count_transactions(store)
    n = 200

    await asyncio.gather(*(log.write([_entry(i)]) for i in range(n)))
    transactions = await count_transactions()

    assert 1 <= transactions <= 10, f"{transactions} transactions for {n} writes"
    assert await store.count() == n
    stored = await store.sql("SELECT seq, request_id FROM {records} ORDER BY seq")
    assert [seq for seq, _ in stored] == list(range(1, n + 1))
    assert sorted(request_id for _, request_id in stored) == sorted(f"r-{i}" for i in range(n))
    report = await log.verify()
    assert report.ok, report
    assert (report.checked, report.first_seq, report.last_seq) == (n, 1, n)
    assert await store.sql("SELECT hash FROM {records} WHERE seq = :n", n=n) == [(report.last_hash,)]
    status = log.status()
    assert {key: status[key] for key in ("status", "last_error", "pending", "transactions")} == {
        "status": "ok",
        "last_error": None,
        "pending": 0,
        "transactions": transactions,
    }
    assert status["last_commit_at"] is not None


async def test_batch_max_bounds_a_transaction_but_never_splits_a_request(store: Store, make_log: MakeLog) -> None:
    log = await make_log(engine=store.engine, batch_max=50)
    count_transactions = _count_transactions(store)

    await asyncio.gather(*(log.write([_entry(i)]) for i in range(200)))
    before = await count_transactions()
    assert 200 // 50 <= before <= 20

    await log.write([_entry(1000 + i) for i in range(120)])  # one request's entries: one transaction
    assert await count_transactions() == before + 1
    assert await store.count() == 320
    assert (await log.verify()).ok


async def test_a_log_with_its_own_engine_batches_concurrent_writes(store: Store, make_log: MakeLog) -> None:
    log = await make_log()  # on SQLite: the log's own sync engine and commit thread
    n = 200

    await asyncio.gather(*(log.write([_entry(i)]) for i in range(n)))

    assert 1 <= log.status()["transactions"] <= 10
    assert await store.count() == n
    report = await log.verify()
    assert report.ok, report
    assert (report.checked, report.last_seq) == (n, n)


async def test_a_write_returns_only_after_its_commit(store: Store, make_log: MakeLog) -> None:
    log = await make_log()
    await log.write([_entry(1), _entry(2)])
    # a connection of the test's own sees both at once: committed, in order
    assert await store.sql("SELECT seq, request_id FROM {records} ORDER BY seq") == [(1, "r-1"), (2, "r-2")]


async def test_a_timestamp_without_zone_is_refused_before_it_is_queued(make_log: MakeLog, store: Store) -> None:
    log = await make_log()
    with pytest.raises(ValueError, match="time zone"):
        await log.write([_entry(1), _entry(2, at=dt.datetime(2026, 11, 21, 9, 30))])
    assert await store.count() == 0
    assert log.healthy


async def test_a_closed_log_fails_closed_and_disposes_only_its_own_engine(store: Store) -> None:
    shared = AuditLog(store.config(), engine=store.engine)
    owned = AuditLog(store.config())
    for log in (shared, owned):
        await log.open()
        await log.write([_entry(1)])
        await log.aclose()
        with pytest.raises(AuditUnavailable):
            await log.write([_entry(2)])
        assert log.status()["status"] == "unavailable"
        assert not log.healthy
    assert await store.count() == 2  # the test's engine, given to ``shared``, still works


async def test_closing_commits_what_is_waiting(store: Store) -> None:
    log = AuditLog(store.config())
    await log.open()
    writes = [asyncio.create_task(log.write([_entry(i)])) for i in range(50)]
    await asyncio.sleep(0)  # every write is queued

    await log.aclose()

    await asyncio.gather(*writes)
    assert await store.count() == 50


# --- tamper evidence ------------------------------------------------------------------------------------------


async def _verified(make_log: MakeLog, n: int = 20, **changes: Any) -> AuditLog:
    log = await make_log(**changes)
    for i in range(n):  # one by one: every record its own transaction, the chain crossing commits
        await log.write([_entry(i, applicant=f"A{i}")])
    assert (await log.verify()).ok
    return log


async def _broken(log: AuditLog) -> VerifyReport:
    report = await log.verify()
    assert not report.ok
    return report


async def test_an_edited_record_is_named(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log)
    await store.sql("UPDATE {records} SET applicant = '110105194912310000' WHERE seq = 7")

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (7, "hash mismatch")
    assert report.checked == 6
    assert "record 7: hash mismatch" in report.summary()


async def test_an_edited_and_rehashed_record_breaks_the_next_link(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log)
    [(prev_hash,)] = await store.sql("SELECT prev_hash FROM {records} WHERE seq = 7")
    forged = record_hash(7, _entry(6, applicant="A-forged"), prev_hash)
    await store.sql("UPDATE {records} SET applicant = 'A-forged', hash = :h WHERE seq = 7", h=forged)

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (8, "prev_hash does not link")


async def test_a_deleted_record_is_named(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log)
    await store.sql("DELETE FROM {records} WHERE seq = 7")

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (7, "sequence gap")
    assert "record 7 is missing" in (report.detail or "")


async def test_a_record_cut_from_the_end_is_named(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log)
    await store.sql("DELETE FROM {records} WHERE seq = 20")

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (20, "sequence gap")


async def test_a_deleted_chain_head_stops_writes_and_is_named(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log, n=3)
    await store.sql("DELETE FROM {head}")

    with pytest.raises(AuditUnavailable, match="chain head is missing"):
        await log.write([_entry(9)])
    assert not log.healthy
    report = await _broken(log)
    assert (report.first_broken, report.reason) == (4, "head mismatch")
    assert (
        await log.prune(now=NOW + 400 * DAY)
    ).refused == "the audit chain head is missing; run `onewindow audit verify`"
    reopened = await make_log()  # a restart does not paper over it with a fresh head
    assert not (await reopened.verify()).ok
    assert await store.count() == 3


async def test_a_swapped_pair_is_named(store: Store, make_log: MakeLog) -> None:
    log = await _verified(make_log)
    await store.sql("UPDATE {records} SET seq = -1 WHERE seq = 7")
    await store.sql("UPDATE {records} SET seq = 7 WHERE seq = 8")
    await store.sql("UPDATE {records} SET seq = 8 WHERE seq = -1")

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (7, "prev_hash does not link")


def test_the_hash_is_over_the_canonical_encoding_whatever_the_zone() -> None:
    entry = _entry(0, at=dt.datetime(2026, 11, 21, 17, 30, 0, 5, tzinfo=CST))
    # written out by hand: changing the encoding would make every stored chain fail to verify
    encoded = (
        '{"applicant":"11010519491231002X","at":"2026-11-21T09:30:00.000005Z","client":"10.0.0.7",'
        '"department":"民政局","entity":"Person","masked":["phone"],"outcome":"partial","prev_hash":"'
        + "0"
        * 64
        + '","principal_kind":"clerk","purpose":"BJ2026000001","refused":["degrees"],"released":["name",'
        '"maritalStatus"],"request_id":"r-0","seq":1,"sources":["civil_affairs","public_security"],'
        '"subject":"zhang.wei","via":"oidc:province","window":"A-07"}'
    )
    expected = hashlib.sha256(encoded.encode("utf-8")).hexdigest()
    assert record_hash(1, entry, "0" * 64) == expected
    assert record_hash(1, dataclasses.replace(entry, at=entry.at.astimezone(dt.UTC)), "0" * 64) == expected
    assert record_hash(2, entry, "0" * 64) != expected
    assert record_hash(1, entry, "1" * 64) != expected
    sealed = hmac.new(SEAL_KEY.encode(), encoded.encode("utf-8"), hashlib.sha256).hexdigest()
    assert record_hash(1, entry, "0" * 64, SEAL_KEY.encode()) == sealed


def test_the_clients_request_id_is_hashed_only_when_set() -> None:
    entry = _entry(0, client_request_id="req-7")
    document = {**entry_values(entry), "seq": 1, "prev_hash": "0" * 64}
    assert record_hash(1, entry, "0" * 64) == hashlib.sha256(canonical(document)).hexdigest()
    # unset, it is left out: a record written before the field hashes as above (the encoding written out by hand)
    del document["client_request_id"]
    unset = dataclasses.replace(entry, client_request_id=None)
    assert record_hash(1, unset, "0" * 64) == hashlib.sha256(canonical(document)).hexdigest()


async def test_a_store_made_before_client_request_id_gains_the_column_and_still_verifies(
    store: Store, make_log: MakeLog
) -> None:
    await _verified(make_log, n=3, seal_key=SEAL_KEY)
    await store.sql("ALTER TABLE {records} DROP COLUMN client_request_id")  # the store as an earlier version made it

    log = await make_log(seal_key=SEAL_KEY)
    assert log.healthy
    assert (await log.verify()).ok
    await log.write([_entry(3, applicant="A3", client_request_id="req-7")])
    await log.write([_entry(4, applicant="A3", client_request_id="req-8")])  # the usual append, where it knows the head
    report = await log.verify()
    assert report.ok, report
    found = await log.query(AuditFilter(applicant="A3"))
    assert [(r.request_id, r.client_request_id) for r in found] == [("r-4", "req-8"), ("r-3", "req-7")]

    await store.sql("UPDATE {records} SET client_request_id = 'req-9' WHERE seq = 4")
    assert (await _broken(log)).first_broken == 4


# --- a sealed chain ---------------------------------------------------------------------------------------------


async def _rewrite(store: Store, seq: int, n: int) -> None:
    """What someone who can write the database, but has no seal key, does: change record ``seq`` of a
    :func:`_verified` chain of ``n``, then recompute every hash after it, and the head's, so that each record links
    to the one before."""
    [(prev_hash,)] = await store.sql("SELECT prev_hash FROM {records} WHERE seq = :seq", seq=seq)
    for at in range(seq, n + 1):
        applicant = "A-forged" if at == seq else f"A{at - 1}"
        hash_ = record_hash(at, _entry(at - 1, applicant=applicant), prev_hash)
        await store.sql(
            "UPDATE {records} SET applicant = :a, prev_hash = :p, hash = :h WHERE seq = :seq",
            a=applicant,
            p=prev_hash,
            h=hash_,
            seq=at,
        )
        prev_hash = hash_
    await store.sql("UPDATE {head} SET hash = :h", h=prev_hash)


async def test_a_rewritten_chain_passes_unsealed_and_is_named_when_sealed(store: Store, make_log: MakeLog) -> None:
    unsealed = await _verified(make_log, n=10)
    await _rewrite(store, 4, 10)
    assert (await unsealed.verify()).ok  # why a production store is sealed: the plain chain cannot see this
    await store.sql("DELETE FROM {records}")
    await store.sql("UPDATE {head} SET seq = 0, hash = :genesis", genesis="0" * 64)

    sealed = await _verified(make_log, n=10, seal_key=SEAL_KEY)
    await _rewrite(store, 4, 10)

    report = await _broken(sealed)
    assert (report.first_broken, report.reason) == (4, "hash mismatch")
    assert report.checked == 3


async def test_a_writer_with_another_seal_key_or_none_fails_closed_and_forks_nothing(
    store: Store, make_log: MakeLog
) -> None:
    sealed = await _verified(make_log, n=3, seal_key=SEAL_KEY)
    for other in (await make_log(seal_key="another-key-of-at-least-32-bytes!!"), await make_log()):
        with pytest.raises(AuditUnavailable, match="seal_key"):
            await other.write([_entry(9)])
        assert not other.healthy
        assert "ChainSealMismatch" in (other.status()["last_error"] or "")
        report = await _broken(other)
        assert (report.first_broken, report.reason) == (1, "hash mismatch")
        assert "sealed with another auth.audit.seal_key" in (report.detail or "")
    assert await store.count() == 3
    await sealed.write([_entry(3, applicant="A3")])  # the store's own writers go on
    report = await sealed.verify()
    assert report.ok, report
    assert report.last_seq == 4


async def test_a_log_opened_with_another_seal_key_or_none_is_unhealthy_before_any_write(
    store: Store, make_log: MakeLog
) -> None:
    await _verified(make_log, n=3, seal_key=SEAL_KEY)
    for other in (await make_log(seal_key="another-key-of-at-least-32-bytes!!"), await make_log()):
        assert not other.healthy
        assert other.seal_mismatch
        assert other.status()["status"] == "unavailable"
        assert "last record (3)" in other.status()["last_error"]
        with pytest.raises(AuditUnavailable, match="seal_key"):
            await other.write([_entry(9)])
    assert (await make_log(seal_key=SEAL_KEY)).healthy


async def test_the_check_at_open_reads_the_chains_end_not_the_whole_chain(store: Store, make_log: MakeLog) -> None:
    await _verified(make_log, n=5, seal_key=SEAL_KEY)
    await store.sql("UPDATE {records} SET applicant = 'A-forged' WHERE seq = 1")

    reopened = await make_log(seal_key=SEAL_KEY)

    assert reopened.healthy  # what lies before the last record is verify's to find
    assert (await _broken(reopened)).first_broken == 1


async def test_a_chain_pruned_to_its_checkpoint_is_checked_by_it_at_open(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [400, 300], seal_key=SEAL_KEY)
    assert (await log.prune(now=NOW)).pruned == 2

    assert (await make_log(seal_key=SEAL_KEY)).healthy
    other = await make_log(seal_key="another-key-of-at-least-32-bytes!!")
    assert other.seal_mismatch
    assert "last checkpoint (1, through record 2)" in other.status()["last_error"]


async def test_a_store_without_its_chain_head_is_refused_at_open(store: Store, make_log: MakeLog) -> None:
    await _verified(make_log, n=2)
    await store.sql("DELETE FROM {head}")

    reopened = await make_log()

    assert not reopened.healthy
    assert not reopened.seal_mismatch  # the store's damage, not this process's key
    with pytest.raises(AuditUnavailable, match="chain head is missing"):
        await reopened.write([_entry(9)])


async def test_pruning_a_sealed_chain_seals_its_checkpoint(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [400, 300, 10, 1], seal_key=SEAL_KEY)

    assert (await log.prune(now=NOW)).pruned == 2

    report = await log.verify()
    assert report.ok, report
    assert report.checkpoints == 1
    unsealed = await make_log()
    report = await _broken(unsealed)
    assert report.reason == "checkpoint hash mismatch"


def test_a_short_seal_key_is_a_configuration_error_that_does_not_echo_it() -> None:
    source: dict[str, Any] = {"kind": "rest", "department": "HRSS", "base_url": "http://127.0.0.1:9"}
    source |= {"queries": {"q": {"path": "/x/{key}"}}, "provides": {"Person.name": {"value": "n"}}}
    config = {"sources": {"hrss": source}, "auth": {"audit": {"seal_key": "${AUDIT_SEAL}"}}}
    with pytest.raises(ConfigError, match="at least 32 bytes") as error:
        parse_config(config, {"AUDIT_SEAL": "too-short-secret"})
    assert error.value.path.startswith("auth.audit")
    assert "too-short-secret" not in str(error.value)
    parsed = parse_config(config, {"AUDIT_SEAL": SEAL_KEY})
    assert parsed.auth.audit is not None
    assert parsed.auth.audit.seal == SEAL_KEY.encode()
    assert SEAL_KEY not in repr(parsed.auth.audit)


# --- retention --------------------------------------------------------------------------------------------------


async def _aged(make_log: MakeLog, ages_in_days: list[float], **changes: Any) -> AuditLog:
    log = await make_log(**changes)
    for i, age in enumerate(ages_in_days):
        await log.write([_entry(i, at=NOW - age * DAY)])
    return log


async def test_prune_deletes_past_retention_and_verify_still_proves_the_rest(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [200, 195, 190, 100, 10, 1])

    report = await log.prune(now=NOW)

    assert (report.pruned, report.through_seq, report.checkpoint, report.refused) == (3, 3, 1, None)
    assert report.cutoff == NOW - 183 * DAY
    assert await store.sql("SELECT seq FROM {records} ORDER BY seq") == [(4,), (5,), (6,)]
    verdict = await log.verify()
    assert verdict.ok, verdict
    assert (verdict.checked, verdict.checkpoints, verdict.first_seq) == (3, 1, 4)

    await log.write([_entry(99)])  # the chain goes on after a prune
    again = await log.prune(now=NOW + 180 * DAY)  # records 4 (100 days old) and 5 (10 days) are now past 183 days
    assert (again.pruned, again.through_seq, again.checkpoint) == (2, 5, 2)
    verdict = await log.verify()
    assert verdict.ok, verdict
    assert (verdict.checked, verdict.checkpoints) == (2, 2)
    assert (await log.prune(now=NOW + 180 * DAY)).pruned == 0


async def test_prune_deletes_only_a_prefix_of_the_chain(store: Store, make_log: MakeLog) -> None:
    # record 2 was written late with an early time: it waits for record 3 to expire rather than leave a hole
    log = await _aged(make_log, [200, 10, 200])

    report = await log.prune(now=NOW)

    assert (report.pruned, report.through_seq) == (1, 1)
    assert (await log.verify()).ok


async def test_the_cutoff_is_exact_whatever_the_zone_of_now(store: Store, make_log: MakeLog) -> None:
    four_hours = 4 / 24
    log = await _aged(make_log, [183 + four_hours, 183 - four_hours])

    report = await log.prune(now=NOW.astimezone(CST))

    assert (report.pruned, report.through_seq) == (1, 1)
    with pytest.raises(ValueError, match="time zone"):
        await log.prune(now=dt.datetime(2026, 11, 21))


async def test_prune_of_everything_leaves_a_verifiable_empty_chain(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [300, 250])

    assert (await log.prune(now=NOW)).pruned == 2
    assert await store.count() == 0
    assert (await log.verify()).ok
    await log.write([_entry(5)])
    verdict = await log.verify()
    assert verdict.ok, verdict
    assert (verdict.first_seq, verdict.checked) == (3, 1)


@pytest.mark.parametrize(
    ("tamper", "first_broken", "reason"),
    [
        ("UPDATE {checkpoints} SET anchor_hash = :forged", 3, "checkpoint hash mismatch"),
        ("UPDATE {checkpoints} SET through_seq = 4", 4, "checkpoint hash mismatch"),
        ("UPDATE {checkpoints} SET pruned = 1", 3, "checkpoint hash mismatch"),
        ("DELETE FROM {checkpoints}", 1, "sequence gap"),
    ],
    ids=["anchor", "through", "count", "deleted"],
)
async def test_a_tampered_checkpoint_is_detected(
    store: Store, make_log: MakeLog, tamper: str, first_broken: int, reason: str
) -> None:
    log = await _aged(make_log, [200, 195, 190, 100, 10])
    await log.prune(now=NOW)
    await store.sql(tamper, **({"forged": "f" * 64} if ":forged" in tamper else {}))

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (first_broken, reason)


async def test_a_second_checkpoint_removed_breaks_the_chain(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [200, 100, 10])
    await log.prune(now=NOW)
    await log.prune(now=NOW + 100 * DAY)
    await store.sql("DELETE FROM {checkpoints} WHERE number = 2")

    report = await _broken(log)

    assert (report.first_broken, report.reason) == (2, "sequence gap")


async def test_prune_refuses_to_delete_a_tampered_record(store: Store, make_log: MakeLog) -> None:
    log = await _aged(make_log, [200, 195, 10])
    await store.sql("UPDATE {records} SET subject = 'someone.else' WHERE seq = 2")

    report = await log.prune(now=NOW)

    assert report.pruned == 0
    assert report.refused is not None
    assert report.refused.startswith("record 2: hash mismatch")
    assert await store.count() == 3  # the evidence stays
    assert (await log.verify()).first_broken == 2


def test_retention_below_180_days_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="at least 180d"):
        AuditConfig(retention="30d")
    assert AuditConfig(retention="1h", allow_short_retention=True).retention == 3600.0
    assert AuditConfig().retention == 183 * 86400.0
    source: dict[str, Any] = {"kind": "rest", "department": "HRSS", "base_url": "http://127.0.0.1:9"}
    source |= {"queries": {"q": {"path": "/x/{key}"}}, "provides": {"Person.name": {"value": "n"}}}
    base = {"sources": {"hrss": source}}
    with pytest.raises(ConfigError, match="at least 180d") as error:
        parse_config(base | {"auth": {"audit": {"retention": "90d"}}}, {})
    assert error.value.path == "auth.audit"
    assert parse_config(base | {"auth": {"audit": {"retention": "200d"}}}, {}).auth.audit.retention == 200 * 86400


# --- several gateway processes ------------------------------------------------------------------------------


async def test_two_gateways_writing_one_store_keep_one_chain(store: Store, make_log: MakeLog) -> None:
    # two logs, each with its own engine and writer: two gateway processes as far as the store can tell
    first, second = await asyncio.gather(make_log(batch_max=5), make_log(batch_max=5))

    await asyncio.gather(
        *(first.write([_entry(i, request_id=f"first-{i}")]) for i in range(100)),
        *(second.write([_entry(i, request_id=f"second-{i}")]) for i in range(100)),
    )

    assert await store.count() == 200
    assert first.status()["transactions"] >= 20
    assert second.status()["transactions"] >= 20
    for log in (first, second):
        report = await log.verify()
        assert report.ok, report
        assert (report.checked, report.last_seq) == (200, 200)
    # the two writers really took turns on the chain (SQLite's lock is not fair enough to count on it there)
    if store.backend != "postgresql":
        return
    writers = [rid.split("-")[0] for (rid,) in await store.sql("SELECT request_id FROM {records} ORDER BY seq")]
    assert sum(a != b for a, b in itertools.pairwise(writers)) > 2


@pytest.mark.postgres
async def test_postgres_appends_in_one_statement_only_while_the_head_is_where_it_was_left(
    postgres_store: Store,
) -> None:
    store = postgres_store
    async with AuditLog(store.config(), engine=store.engine) as log:
        await log.write([_entry(0), _entry(1)])
        ((seq, hash_),) = await store.sql("SELECT seq, hash FROM {head}")
        appender = PostgresAppend(store.engine, {None: store.schema} if store.schema else None)
        try:
            stale = link(ChainHead(seq - 1, hash_), [_entry(2)])
            assert not await appender.run(stale)  # another writer moved the head meanwhile: nothing written
            assert await store.count() == 2

            linked = link(ChainHead(seq, hash_), [_entry(2), _entry(3, purpose=None, window=None), _entry(4)])
            assert await appender.run(linked)
        finally:
            await appender.aclose()

        assert await store.sql("SELECT seq, hash FROM {head}") == [(linked.head.seq, linked.head.hash)]
        after = await store.sql("SELECT count(DISTINCT xmin::text) FROM {records} WHERE seq > :seq", seq=seq)
        assert after == [(1,)]  # the three records and the head in one transaction
        report = await log.verify()  # every value read back hashes as written (timestamps, lists, nulls, 民政局)
        assert report.ok, report
        assert (report.checked, report.last_seq) == (5, 5)
        found = await log.query(AuditFilter())
        assert [record.request_id for record in found] == ["r-4", "r-3", "r-2", "r-1", "r-0"]
        assert (found[1].purpose, found[1].window) == (None, None)
        assert (found[0].at, found[0].released) == (_entry(4).at, _entry(4).released)

        await log.write([_entry(5)])  # the log's next append finds the head moved by another writer, and chains on
        report = await log.verify()
        assert report.ok, report
        assert report.last_seq == 6


async def test_sqlite_appends_wait_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    async with AuditLog(AuditConfig(url=f"sqlite+aiosqlite:///{database}", write_timeout="5s")) as log:
        await log.write([_entry(0)])
        other = sqlite3.connect(database, isolation_level=None)  # another gateway, in the middle of its append
        try:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            other.execute("BEGIN IMMEDIATE")
            writes = asyncio.gather(*(log.write([_entry(i)]) for i in range(1, 6)))
            await asyncio.sleep(0.3)
            assert not writes.done()
            other.execute("COMMIT")
            await writes
        finally:
            other.close()
        assert log.healthy
        report = await log.verify()
    assert report.ok, report
    assert report.checked == 6


async def test_sqlite_commits_leave_the_event_loop_for_a_while_after_a_slow_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    committed_in: list[int] = []
    commit = audit_sqlite.SqliteFile._commit

    def spy(self: audit_sqlite.SqliteFile, connection: Any) -> None:
        committed_in.append(threading.get_ident())
        commit(self, connection)

    monkeypatch.setattr(audit_sqlite.SqliteFile, "_commit", spy)
    async with AuditLog(AuditConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")) as log:
        await log.write([_entry(0)])  # the first append reads the head, in the worker, through SQLAlchemy
        await log.write([_entry(1)])
        assert committed_in == [loop_thread]
        assert (log.status()["commits_in"], log.status()["slow_commit"]) == ("event loop", None)
        monkeypatch.setattr(audit_sqlite, "SLOW_COMMIT", 0.0)  # every commit is now too slow for the loop
        await log.write([_entry(2)])
        status = log.status()
        assert status["commits_in"] == "worker thread"
        assert status["slow_commit"]["ms"] >= 0
        monkeypatch.setattr(audit_sqlite, "SLOW_COMMIT", 10.0)
        committed_in.clear()
        await asyncio.gather(*(log.write([_entry(i)]) for i in range(3, 8)))
        assert committed_in
        assert loop_thread not in committed_in  # still in the worker, for WORKER_SPELL
        assert log.status()["status"] == "ok"
        report = await log.verify()
    assert report.ok, report
    assert report.checked == 8


async def test_a_sqlite_lock_held_past_the_write_timeout_fails_closed_then_the_chain_goes_on(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    timeout = 0.5
    async with AuditLog(AuditConfig(url=f"sqlite+aiosqlite:///{database}", write_timeout=timeout)) as log:
        await log.write([_entry(0)])
        other = sqlite3.connect(database, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # held longer than a request may wait
            started = time.monotonic()
            with pytest.raises(AuditUnavailable):
                await log.write([_entry(1)])
            elapsed = time.monotonic() - started
            assert timeout <= elapsed < timeout + 0.5, f"failed closed after {elapsed:.2f}s"
            assert not log.healthy
            assert "within" in (log.status()["last_error"] or "")
            other.execute("COMMIT")
        finally:
            other.close()
        await log.write([_entry(2)])  # the given-up append may still have committed in the worker: no matter
        assert log.healthy
        report = await log.verify()
    assert report.ok, report
    with contextlib.closing(sqlite3.connect(database)) as conn:
        stored = conn.execute("SELECT request_id FROM onewindow_audit_records ORDER BY seq").fetchall()
    assert stored[0] == ("r-0",)
    assert stored[-1] == ("r-2",)


# --- an unreachable store ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.STALL, Fault.CANNED], ids=["stalled", "dropped"])
@pytest.mark.postgres
async def test_an_unreachable_store_fails_closed_and_recovers(postgres_store: Store, fault: Fault) -> None:
    store = postgres_store
    timeout = 0.5
    async with FaultProxy(store.engine.url.port or 5432) as proxy:
        url = store.engine.url.set(port=proxy.port).render_as_string(hide_password=False)
        config = AuditConfig(url=url, db_schema=store.schema, write_timeout=timeout)
        async with AuditLog(config) as log:
            await log.write([_entry(1)])
            assert log.healthy

            proxy.mode = fault
            started = time.monotonic()
            with pytest.raises(AuditUnavailable):
                await log.write([_entry(2)])
            elapsed = time.monotonic() - started
            assert elapsed < timeout + 0.25, f"failed closed only after {elapsed:.2f}s"
            status = log.status()
            assert status["status"] == "unavailable"
            assert status["last_error"]
            assert not log.healthy

            proxy.mode = Fault.FORWARD
            await log.write([_entry(3)])  # the next write after the store is back goes through
            assert log.status()["status"] == "ok"
            assert log.healthy
            report = await log.verify()
        assert report.ok, report
    stored = {rid for (rid,) in await store.sql("SELECT request_id FROM {records}")}
    assert {"r-1", "r-3"} <= stored
    assert "r-2" not in stored  # nothing reached the server while it was unreachable


# --- queries ------------------------------------------------------------------------------------------------------


async def test_queries_filter_newest_first_and_page(store: Store, make_log: MakeLog) -> None:
    log = await make_log()
    await log.write(
        [
            _entry(0, applicant="A", subject="zhang.wei", outcome="released"),
            _entry(1, applicant="B", subject="li.na", department="人社局", outcome="refused"),
            _entry(2, applicant="A", subject="li.na", department="人社局", outcome="partial"),
            _entry(3, applicant="A", subject="zhang.wei", at=NOW + 2 * DAY, outcome="released"),
            _entry(4, applicant="C", subject="zhang.wei", outcome="refused"),
        ]
    )

    async def seqs(flt: AuditFilter, **kwargs: Any) -> list[int]:
        return [record.seq for record in await log.query(flt, **kwargs)]

    assert await seqs(AuditFilter()) == [5, 4, 3, 2, 1]
    assert await seqs(AuditFilter(applicant="A")) == [4, 3, 1]
    assert await seqs(AuditFilter(subject="li.na")) == [3, 2]
    assert await seqs(AuditFilter(department="人社局", applicant="A")) == [3]
    assert await seqs(AuditFilter(outcome="refused")) == [5, 2]
    assert await seqs(AuditFilter(since=NOW + DAY)) == [4]
    assert await seqs(AuditFilter(until=NOW + 2 * DAY, applicant="A")) == [3, 1]
    assert await seqs(AuditFilter(since=(NOW + 2 * DAY).astimezone(CST))) == [4]
    assert await seqs(AuditFilter(), limit=2) == [5, 4]
    assert await seqs(AuditFilter(), limit=2, before_seq=4) == [3, 2]
    assert await seqs(AuditFilter(applicant="nobody")) == []
    with pytest.raises(ValueError, match="limit"):
        await log.query(AuditFilter(), limit=0)

    [record] = await log.query(AuditFilter(applicant="B"))
    assert record.entry == _entry(1, applicant="B", subject="li.na", department="人社局", outcome="refused")
    assert record.at.tzinfo is not None
    [(stored_hash,)] = await store.sql("SELECT hash FROM {records} WHERE seq = 2")
    assert record.hash == stored_hash


def test_a_record_has_the_seq_every_entry_field_and_the_hash() -> None:
    names = [f.name for f in dataclasses.fields(AuditRecord)]
    assert names == [*(f.name for f in dataclasses.fields(AuditEntry)), "seq", "hash"]


async def test_a_citizen_sees_staff_masked_in_their_own_access_log(store: Store, make_log: MakeLog) -> None:
    log = await make_log()
    await log.write(
        [
            _entry(0, subject="zhang.wei", principal_kind="clerk"),
            _entry(1, subject="11010519491231002X", principal_kind="citizen"),
            _entry(2, subject="tax-bureau-sync", principal_kind="integrator"),
            _entry(3, subject="other", applicant="someone-else"),
        ]
    )

    seen = await log.access_log("11010519491231002X")

    assert [r.subject for r in seen] == ["ta***nc", "11010519491231002X", "zh***ei"]
    unmasked = await make_log(mask_principals_for_citizens=False)
    assert [r.subject for r in await unmasked.access_log("11010519491231002X")][-1] == "zhang.wei"
    assert [mask_subject(s) for s in ("li", "wang", "zhang.wei")] == ["***", "w***", "zh***ei"]
