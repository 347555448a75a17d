from __future__ import annotations

import asyncio
import datetime as dt
import gc
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import BreakerPolicy, MaintenanceConfig, SourceConfig
from gateway.errors import (
    BadSourceData,
    ConfigError,
    SourceError,
    SourceFault,
    SourceMaintenance,
    SourceTimeout,
    SourceUnavailable,
)
from gateway.mapping import CHINA_STANDARD_TIME
from gateway.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    MaintenanceSchedule,
    RetryBudget,
    SourceGuard,
)

UTC = dt.UTC
# 2026-06-05 is a Friday, 2026-06-06 a Saturday, 2026-06-07 a Sunday.


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Department:
    """A department read that counts its calls and fails with the errors it is given, then answers."""

    def __init__(self, *errors: BaseException | None, delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            error = self.errors.pop(0) if len(self.errors) > 1 else self.errors[0]
            if error is not None:
                raise error
        return "answer"


def unavailable() -> SourceUnavailable:
    return SourceUnavailable("civil", "connection refused")


@pytest.fixture
def make_config() -> Callable[..., SourceConfig]:
    def make(**overrides: Any) -> SourceConfig:
        data: dict[str, Any] = {
            "kind": "rest",
            "department": "Civil Affairs Bureau",
            "timeout": "1s",
            "queries": {"person": {}},
            "provides": {"Person.name": {"query": "person", "value": "XM"}},
            "retry": {"attempts": 3, "backoff": "1ms", "max_backoff": "2ms"},
            "breaker": {"failures": 100},
        }
        data.update(overrides)
        return SourceConfig.model_validate(data)

    return make


# --- circuit breaker ---------------------------------------------------------------------------------------------


def fail(breaker: CircuitBreaker, error: BaseException | None) -> None:
    breaker.acquire()
    breaker.record(error)


def test_breaker_opens_after_consecutive_counted_failures() -> None:
    breaker = CircuitBreaker("civil", BreakerPolicy(failures=3, reset_after=30), FakeClock())
    fail(breaker, SourceTimeout("civil", "slow"))
    fail(breaker, SourceFault("civil", "fault"))
    fail(breaker, None)  # an answer resets the count
    fail(breaker, SourceTimeout("civil", "slow"))
    fail(breaker, unavailable())
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, SourceFault("civil", "fault"))
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == 1000.0
    with pytest.raises(CircuitOpen, match=r"civil: circuit open; next try in 30s") as refused:
        breaker.acquire()
    assert isinstance(refused.value, SourceUnavailable)
    assert refused.value.extensions == {"code": "SOURCE_UNAVAILABLE", "source": "civil"}


def test_bad_data_does_not_open_the_breaker() -> None:
    breaker = CircuitBreaker("civil", BreakerPolicy(failures=2), FakeClock())
    for _ in range(5):
        fail(breaker, BadSourceData("civil", "unreadable answer"))
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


def test_breaker_half_open_lets_exactly_one_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("civil", BreakerPolicy(failures=1, reset_after=30), clock)
    fail(breaker, unavailable())
    clock.now += 29.5
    with pytest.raises(CircuitOpen, match="next try in 1s"):
        breaker.acquire()
    clock.now += 0.5
    breaker.acquire()  # the trial
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen, match="trial call is in progress"):
        breaker.acquire()
    breaker.record(None)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.opened_at is None
    breaker.acquire()


def test_failed_trial_reopens_the_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("civil", BreakerPolicy(failures=3, reset_after=10), clock)
    for _ in range(3):
        fail(breaker, unavailable())
    clock.now += 10
    fail(breaker, SourceTimeout("civil", "slow"))  # one failed trial is enough
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now
    assert breaker.opened_count == 2
    with pytest.raises(CircuitOpen, match="next try in 10s"):
        breaker.acquire()


def test_released_trial_lets_the_next_call_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("civil", BreakerPolicy(failures=1, reset_after=10), clock)
    fail(breaker, unavailable())
    clock.now += 10
    breaker.acquire()
    breaker.release()  # e.g. the caller was cancelled
    breaker.acquire()
    assert breaker.state is BreakerState.HALF_OPEN


async def test_open_breaker_costs_microseconds(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config(breaker={"failures": 2, "reset_after": "1m"}))
    dead = Department(unavailable())
    with pytest.raises(SourceUnavailable):
        await guard.call(dead, deadline=None)  # two attempts: the breaker opens
    assert guard.breaker.state is BreakerState.OPEN
    calls = dead.calls
    refused = 0
    gc.collect()  # a full collection of the test process's heap (~50 ms) is not the guard's cost
    started = time.perf_counter()
    for _ in range(1000):
        try:
            await guard.call(dead, deadline=None)
        except CircuitOpen:  # not pytest.raises: its bookkeeping costs more than the refusal
            refused += 1
    assert time.perf_counter() - started < 0.05
    assert refused == 1000
    assert dead.calls == calls
    assert guard.breaker.refused_count == 1000


async def test_guard_half_open_refuses_concurrent_calls_during_the_trial(
    make_config: Callable[..., SourceConfig],
) -> None:
    clock = FakeClock()
    guard = SourceGuard("civil", make_config(breaker={"failures": 1, "reset_after": "10s"}), clock)
    with pytest.raises(SourceUnavailable):
        await guard.call(Department(unavailable()), deadline=None)
    clock.now += 10
    slow = Department(None, delay=0.05)
    trial = asyncio.create_task(guard.call(slow, deadline=None))
    await asyncio.sleep(0.01)
    with pytest.raises(CircuitOpen, match="trial"):
        await guard.call(slow, deadline=None)
    assert await trial == "answer"
    assert slow.calls == 1
    assert guard.breaker.state is BreakerState.CLOSED


# --- retries -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "calls"),
    [
        (SourceUnavailable("civil", "refused"), 3),
        (SourceTimeout("civil", "slow"), 3),
        (SourceFault("civil", "fault"), 1),
        (BadSourceData("civil", "unreadable"), 1),
    ],
)
async def test_retries_only_timeouts_and_unavailable(
    make_config: Callable[..., SourceConfig], error: SourceError, calls: int
) -> None:
    guard = SourceGuard("civil", make_config())
    department = Department(error)
    with pytest.raises(type(error)):
        await guard.call(department, deadline=None)
    assert department.calls == calls


async def test_a_retry_can_succeed(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config())
    department = Department(unavailable(), None)
    assert await guard.call(department, deadline=None) == "answer"
    assert department.calls == 2


async def test_attempts_one_means_no_retry(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config(retry={"attempts": 1}))
    department = Department(unavailable())
    with pytest.raises(SourceUnavailable):
        await guard.call(department, deadline=None)
    assert department.calls == 1


async def test_no_retry_once_the_breaker_opens(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config(retry={"attempts": 5, "backoff": "1ms"}, breaker={"failures": 2}))
    department = Department(unavailable())
    with pytest.raises(SourceUnavailable) as raised:
        await guard.call(department, deadline=None)
    assert not isinstance(raised.value, CircuitOpen)  # the department's own error, not the refusal
    assert department.calls == 2


async def test_no_retry_that_could_not_finish_before_the_deadline(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config(timeout="1s"))
    loop = asyncio.get_running_loop()
    department = Department(unavailable())
    with pytest.raises(SourceUnavailable):
        await guard.call(department, deadline=loop.time() + 0.5)
    assert department.calls == 1
    department = Department(unavailable())
    with pytest.raises(SourceUnavailable):
        await guard.call(department, deadline=loop.time() + 60)
    assert department.calls == 3


async def test_a_passed_deadline_calls_nobody(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config())
    department = Department(None)
    with pytest.raises(SourceTimeout, match="deadline"):
        await guard.call(department, deadline=asyncio.get_running_loop().time() - 1)
    assert department.calls == 0


async def test_retry_budget_stops_hammering_a_dead_department(make_config: Callable[..., SourceConfig]) -> None:
    clock = FakeClock()
    guard = SourceGuard("civil", make_config(retry={"attempts": 5, "backoff": "1ms", "budget": 0.0}), clock)
    dead = Department(unavailable())
    with pytest.raises(SourceUnavailable):
        await guard.call(dead, deadline=None)
    assert dead.calls == 4  # one call and the floor of 3 retries
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            await guard.call(dead, deadline=None)
    assert dead.calls == 7  # the budget is spent: one attempt each
    clock.now += 10
    with pytest.raises(SourceUnavailable):
        await guard.call(dead, deadline=None)
    assert dead.calls == 11  # a new window


def test_retry_budget_grows_with_calls() -> None:
    clock = FakeClock()
    budget = RetryBudget(0.5, clock, floor=0)
    assert not budget.try_spend()
    for _ in range(4):
        budget.record_call()
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    clock.now += 9
    assert not budget.try_spend()  # still the same window
    clock.now += 1.5
    budget.record_call()
    budget.record_call()
    assert [budget.try_spend() for _ in range(2)] == [True, False]


# --- timeouts ----------------------------------------------------------------------------------------------------


async def test_attempt_timeout_is_a_source_timeout_naming_the_source(
    make_config: Callable[..., SourceConfig],
) -> None:
    guard = SourceGuard("civil", make_config(timeout="50ms", retry={"attempts": 2, "backoff": "1ms"}))
    slow = Department(None, delay=10)
    started = time.perf_counter()
    with pytest.raises(SourceTimeout, match=r"^civil: no answer within 0.05s$") as raised:
        await guard.call(slow, deadline=None)
    assert time.perf_counter() - started < 1
    assert raised.value.source == "civil"
    assert slow.calls == 2
    assert guard.status()["last_error"]["code"] == "SOURCE_TIMEOUT"


async def test_attempt_timeout_is_cut_by_the_deadline(make_config: Callable[..., SourceConfig]) -> None:
    guard = SourceGuard("civil", make_config(timeout="10s", breaker={"failures": 1}))
    slow = Department(None, delay=10)
    started = time.perf_counter()
    with pytest.raises(SourceTimeout):
        await guard.call(slow, deadline=asyncio.get_running_loop().time() + 0.05)
    assert time.perf_counter() - started < 1
    assert guard.breaker.state is BreakerState.CLOSED  # the request ran out of time, not the department


# --- maintenance -------------------------------------------------------------------------------------------------


def schedule(**config: Any) -> MaintenanceSchedule:
    return MaintenanceSchedule(MaintenanceConfig.model_validate(config))


def cst(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=CHINA_STANDARD_TIME)


def test_weekly_window_is_in_china_standard_time() -> None:
    weekend = schedule(weekly=[{"days": ["sat"], "start": "01:00", "end": "05:00"}])
    period = weekend.active(dt.datetime(2026, 6, 5, 18, 0, tzinfo=UTC))  # Saturday 02:00 CST
    assert period is not None
    assert period.end == cst(2026, 6, 6, 5, 0)
    assert weekend.active(dt.datetime(2026, 6, 6, 2, 0, tzinfo=UTC)) is None  # Saturday 10:00 CST
    assert weekend.active(cst(2026, 6, 6, 0, 59)) is None
    assert weekend.active(cst(2026, 6, 6, 5, 0)) is None  # the end is not in the window
    assert weekend.active(cst(2026, 6, 13, 4, 59)) is not None  # every week


def test_weekly_window_across_midnight() -> None:
    night = schedule(weekly=[{"days": ["fri"], "start": "23:00", "end": "02:00"}])
    assert night.active(cst(2026, 6, 5, 22, 59)) is None
    assert night.active(cst(2026, 6, 5, 23, 30)) is not None
    period = night.active(cst(2026, 6, 6, 1, 30))  # Saturday morning: Friday's window
    assert period is not None
    assert (period.start, period.end) == (cst(2026, 6, 5, 23, 0), cst(2026, 6, 6, 2, 0))
    assert night.active(cst(2026, 6, 6, 2, 0)) is None
    assert night.active(cst(2026, 6, 7, 1, 0)) is None  # Sunday morning: Saturday has no window
    assert night.active(cst(2026, 6, 4, 23, 30)) is None  # Thursday


def test_weekly_window_to_midnight() -> None:
    sunday = schedule(weekly=[{"days": ["sun"], "start": "22:00", "end": "24:00"}])
    assert sunday.active(cst(2026, 6, 7, 23, 59)) is not None
    assert sunday.active(cst(2026, 6, 8, 0, 0)) is None


def test_weekly_end_past_midnight_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"maintenance.weekly\[0\].end"):
        schedule(weekly=[{"days": ["sun"], "start": "22:00", "end": "24:30"}])


def test_dated_window_compares_aware_datetimes() -> None:
    upgrade = schedule(dates=[{"start": "2026-12-01T22:00:00+08:00", "end": "2026-12-02T06:00:00+08:00"}])
    assert upgrade.active(dt.datetime(2026, 12, 1, 13, 59, tzinfo=UTC)) is None  # 21:59 CST
    period = upgrade.active(dt.datetime(2026, 12, 1, 14, 0, tzinfo=UTC))
    assert period is not None
    assert period.until(dt.datetime(2026, 12, 1, 14, 0, tzinfo=UTC)) == "2026-12-02 06:00"
    assert period.until(cst(2026, 12, 2, 1, 0)) == "06:00"
    assert upgrade.active(cst(2026, 12, 2, 6, 0)) is None


def test_dated_window_without_offset_is_china_standard_time() -> None:
    upgrade = schedule(dates=[{"start": "2026-12-01T22:00:00", "end": "2026-12-02T06:00:00"}])
    assert upgrade.active(dt.datetime(2026, 12, 1, 14, 30, tzinfo=UTC)) is not None


def test_overlapping_windows_report_the_latest_end() -> None:
    both = schedule(
        weekly=[{"days": ["sat"], "start": "01:00", "end": "03:00"}],
        dates=[{"start": "2026-06-06T00:00:00+08:00", "end": "2026-06-06T08:00:00+08:00"}],
    )
    period = both.active(cst(2026, 6, 6, 2, 0))
    assert period is not None
    assert period.end == cst(2026, 6, 6, 8, 0)


async def test_guard_in_maintenance_does_not_call(make_config: Callable[..., SourceConfig]) -> None:
    config = make_config(maintenance={"weekly": [{"days": ["sat"], "start": "01:00", "end": "05:00"}]})
    guard = SourceGuard("civil", config, now=lambda: dt.datetime(2026, 6, 5, 18, 0, tzinfo=UTC))
    department = Department(None)
    with pytest.raises(SourceMaintenance, match=r"^civil: in maintenance until 05:00$") as raised:
        await guard.call(department, deadline=None)
    assert department.calls == 0
    assert raised.value.extensions == {"code": "SOURCE_MAINTENANCE", "source": "civil"}
    assert guard.status()["maintenance"] == {"until": "2026-06-06T05:00:00+08:00"}


async def test_guard_outside_maintenance_calls(make_config: Callable[..., SourceConfig]) -> None:
    config = make_config(maintenance={"weekly": [{"days": ["sat"], "start": "01:00", "end": "05:00"}]})
    guard = SourceGuard("civil", config, now=lambda: dt.datetime(2026, 6, 6, 2, 0, tzinfo=UTC))
    assert await guard.call(Department(None), deadline=None) == "answer"


async def test_status_reports_an_open_breaker(make_config: Callable[..., SourceConfig]) -> None:
    clock = FakeClock()
    guard = SourceGuard("civil", make_config(breaker={"failures": 1, "reset_after": "30s"}), clock)
    with pytest.raises(SourceFault):
        await guard.call(Department(SourceFault("civil", "HTTP 503")), deadline=None)
    clock.now += 10
    status = guard.status()
    assert status["breaker"] == "open"
    assert status["retry_in"] == 20
    assert status["maintenance"] is None
    assert status["last_error"]["code"] == "SOURCE_FAULT"
    assert status["last_error"]["message"] == "HTTP 503"
