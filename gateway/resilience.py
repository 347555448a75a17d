"""Keeping a failing department from taking the gateway down with it.

Every call to a department goes through its :class:`SourceGuard`, which combines:

* a :class:`MaintenanceSchedule` -- inside a configured window the department is not called at all
  (:class:`~gateway.errors.SourceMaintenance`);
* a :class:`CircuitBreaker` -- after ``breaker.failures`` consecutive failures the department is not called for
  ``breaker.reset_after`` seconds, then one trial call decides whether it is back (:class:`CircuitOpen`, a
  ``SourceUnavailable``, costs microseconds);
* bounded retries of the (idempotent) read, with jittered exponential backoff, never past the request's deadline
  and within a :class:`RetryBudget`, so a dead department is not hammered;
* a timeout per attempt (:class:`~gateway.errors.SourceTimeout` naming the source).

    guard = SourceGuard("civil_affairs", config.sources["civil_affairs"], metrics=metrics)
    records = await guard.call(lambda: adapter.fetch("marriage", keys), deadline=loop.time() + 10)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from gateway.config import BreakerPolicy, MaintenanceConfig, RetryPolicy, SourceConfig
from gateway.errors import (
    BadSourceData,
    ConfigError,
    GatewayError,
    SourceError,
    SourceFault,
    SourceMaintenance,
    SourceTimeout,
    SourceUnavailable,
)
from gateway.mapping import CHINA_STANDARD_TIME

if TYPE_CHECKING:
    from gateway.metrics import GatewayMetrics

__all__ = [
    "BUDGET_FLOOR",
    "BUDGET_WINDOW",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "MaintenancePeriod",
    "MaintenanceSchedule",
    "RetryBudget",
    "SourceGuard",
]

T = TypeVar("T")
Clock = Callable[[], float]

BUDGET_WINDOW = 10.0
"""Seconds over which the retry budget is counted."""
BUDGET_FLOOR = 3
"""Retries allowed in a window whatever the traffic, so a quiet source still gets a second chance."""

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = dt.timedelta(days=1)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BreakerState(Enum):
    """A circuit breaker's state; the metrics gauge reports them as 0, 1 and 2."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


class CircuitOpen(SourceUnavailable):
    """The breaker refused the call: the department was not called. Never retried."""


def _counts_as_failure(exc: BaseException) -> bool:
    """Whether an outcome says the department is unwell (as opposed to a bad answer or our own refusal)."""
    if isinstance(exc, CircuitOpen | BadSourceData | SourceMaintenance):
        return False
    if isinstance(exc, SourceTimeout | SourceUnavailable | SourceFault):
        return True
    # Anything untyped is an adapter bug talking to this department; other gateway errors are not its fault.
    return not isinstance(exc, GatewayError)


class CircuitBreaker:
    """Stop calling a department that keeps failing; let one trial call through after a while.

    CLOSED: calls pass; ``policy.failures`` consecutive failures (timeouts, unavailable, faults -- not bad data,
    not an empty answer) open it. OPEN: calls are refused at once with :class:`CircuitOpen`. After
    ``policy.reset_after`` seconds the next call is the one trial (HALF_OPEN; others are refused meanwhile): its
    success closes the breaker, its failure opens it again.

    >>> breaker = CircuitBreaker("civil_affairs", BreakerPolicy(failures=1, reset_after=30))
    >>> breaker.acquire(); breaker.record(SourceTimeout("civil_affairs", "no answer within 2s"))
    >>> breaker.state
    <BreakerState.OPEN: 'open'>
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock = time.monotonic,
        *,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._trial_in_flight = False
        self.opened_at: float | None = None
        """Clock time the breaker last opened; ``None`` while closed."""
        self.consecutive_failures = 0
        self.opened_count = 0
        self.refused_count = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        if self._state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.policy.reset_after - self._clock())

    def check(self) -> None:
        """Raise :class:`CircuitOpen` if a call now would be refused, without claiming the trial."""
        refusal = self._refusal()
        if refusal is not None:
            self.refused_count += 1
            raise refusal

    def acquire(self) -> None:
        """Admit a call or raise :class:`CircuitOpen`. An admitted call must end in :meth:`record` or
        :meth:`release`."""
        self.check()
        if self._state is BreakerState.OPEN:  # reset_after has passed: this call is the trial
            self._set(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            self._trial_in_flight = True

    def record(self, error: BaseException | None) -> None:
        """Record how an admitted call ended: ``None`` for an answer (even an empty one), else the error."""
        self._trial_in_flight = False
        if error is None or not _counts_as_failure(error):
            self.consecutive_failures = 0
            if self._state is not BreakerState.CLOSED:
                self.opened_at = None
                self._set(BreakerState.CLOSED)
            return
        self.consecutive_failures += 1
        if self._state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.policy.failures:
            self.opened_at = self._clock()
            self.opened_count += 1
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """End an admitted call that says nothing about the department (cancelled, cut by the request deadline)."""
        self._trial_in_flight = False

    def _refusal(self) -> CircuitOpen | None:
        if self._state is BreakerState.CLOSED:
            return None
        if self._state is BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                return CircuitOpen(self.name, "circuit half-open; a trial call is in progress")
            return None
        wait = self.retry_in()
        return CircuitOpen(self.name, f"circuit open; next try in {math.ceil(wait)}s") if wait > 0 else None

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)


class RetryBudget:
    """At most ``ratio`` retries per call, plus ``floor``, over a rolling ``window`` of seconds.

    >>> budget = RetryBudget(0.2, floor=0)
    >>> for _ in range(10): budget.record_call()
    >>> budget.try_spend(), budget.try_spend(), budget.try_spend()
    (True, True, False)
    """

    def __init__(
        self, ratio: float, clock: Clock = time.monotonic, *, window: float = BUDGET_WINDOW, floor: int = BUDGET_FLOOR
    ) -> None:
        self.ratio = ratio
        self.window = window
        self.floor = floor
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [whole second, calls, retries], oldest first

    def record_call(self) -> None:
        self._bucket()[1] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget if it allows one."""
        bucket = self._bucket()
        calls = sum(b[1] for b in self._buckets)
        retries = sum(b[2] for b in self._buckets)
        if retries >= self.floor + self.ratio * calls:
            return False
        bucket[2] += 1
        return True

    def _bucket(self) -> list[int]:
        second = math.floor(self._clock())
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]


@dataclass(frozen=True)
class MaintenancePeriod:
    """An active maintenance window: when it started and ends, in China Standard Time."""

    start: dt.datetime
    end: dt.datetime

    def until(self, now: dt.datetime) -> str:
        """``"05:00"``, or ``"2026-12-02 06:00"`` when it does not end today."""
        if self.end.date() == now.astimezone(CHINA_STANDARD_TIME).date():
            return self.end.strftime("%H:%M")
        return self.end.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class _Weekly:
    days: frozenset[int]
    start: dt.timedelta
    length: dt.timedelta


def _minutes(text: str, path: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    total = hours * 60 + minutes
    if total > 24 * 60:
        raise ConfigError(path, f"{text!r} is not a time of day (00:00 to 24:00)")
    return total


class MaintenanceSchedule:
    """When a department is down on purpose.

    Weekly windows are in China Standard Time and start on the listed days; one whose ``start`` is after its
    ``end`` runs past midnight into the next day (``end: "24:00"`` is midnight). Dated windows without an offset
    are read as China Standard Time.

    >>> schedule = MaintenanceSchedule(MaintenanceConfig(weekly=[{"days": ["fri"], "start": "23:00", "end": "02:00"}]))
    >>> schedule.active(dt.datetime(2026, 6, 5, 17, 30, tzinfo=dt.UTC))  # Saturday 01:30 CST
    MaintenancePeriod(start=...5, 23, 0..., end=...6, 2, 0...)
    """

    def __init__(self, config: MaintenanceConfig, *, path: str = "maintenance") -> None:
        self._weekly: list[_Weekly] = []
        for i, window in enumerate(config.weekly):
            start = _minutes(window.start, f"{path}.weekly[{i}].start")
            end = _minutes(window.end, f"{path}.weekly[{i}].end")
            length = (end - start) % (24 * 60) or 24 * 60  # equal start and end: the whole day
            days = frozenset(_DAYS.index(day) for day in window.days)
            self._weekly.append(_Weekly(days, dt.timedelta(minutes=start), dt.timedelta(minutes=length)))
        self._dated = [MaintenancePeriod(self._aware(window.start), self._aware(window.end)) for window in config.dates]

    @staticmethod
    def _aware(moment: dt.datetime) -> dt.datetime:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=CHINA_STANDARD_TIME)
        return aware.astimezone(CHINA_STANDARD_TIME)

    def __bool__(self) -> bool:
        return bool(self._weekly or self._dated)

    def active(self, now: dt.datetime) -> MaintenancePeriod | None:
        """The window ``now`` (an aware datetime) falls in -- the one ending last if several overlap -- or None."""
        if now.tzinfo is None:
            raise ValueError("maintenance windows are checked against an aware datetime")
        local = now.astimezone(CHINA_STANDARD_TIME)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        found = [period for period in self._dated if period.start <= local < period.end]
        for window in self._weekly:
            for day_start in (midnight, midnight - _DAY):  # a window from yesterday may run past midnight
                start = day_start + window.start
                if day_start.weekday() in window.days and start <= local < start + window.length:
                    found.append(MaintenancePeriod(start, start + window.length))
        return max(found, key=lambda period: period.end, default=None)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SourceTimeout | SourceUnavailable) and not isinstance(exc, CircuitOpen)


class SourceGuard:
    """One department's maintenance windows, circuit breaker, retries and per-attempt timeout.

    ``fn`` is an idempotent read taking no arguments; it raises typed :class:`~gateway.errors.SourceError`s.
    ``deadline`` is the request's deadline in event-loop time (``loop.time()``) or None.

    >>> guard = SourceGuard("civil_affairs", config.sources["civil_affairs"])  # doctest: +SKIP
    >>> found = await guard.call(lambda: adapter.fetch("marriage", keys), deadline=None)  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        source_config: SourceConfig,
        clock: Clock = time.monotonic,
        *,
        now: Callable[[], dt.datetime] = _utcnow,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.name = name
        self.timeout = source_config.timeout
        self.retry: RetryPolicy = source_config.retry
        self.maintenance = MaintenanceSchedule(source_config.maintenance, path=f"sources.{name}.maintenance")
        self._now = now
        self._metrics = metrics
        on_change = None if metrics is None else (lambda state: metrics.breaker_state(name, state))
        self.breaker = CircuitBreaker(name, source_config.breaker, clock, on_change=on_change)
        self.budget = RetryBudget(self.retry.budget, clock)
        self._wait = wait_random_exponential(multiplier=self.retry.backoff, max=self.retry.max_backoff)
        self.last_error: tuple[SourceError, dt.datetime] | None = None
        if metrics is not None:
            metrics.breaker_state(name, self.breaker.state)

    async def call(self, fn: Callable[[], Awaitable[T]], *, deadline: float | None) -> T:
        """Call ``fn`` under the guard; raise the last attempt's error if none succeeds."""
        if self.maintenance:
            now = self._now()
            period = self.maintenance.active(now)
            if period is not None:
                self._count("SOURCE_MAINTENANCE")
                raise SourceMaintenance(self.name, f"in maintenance until {period.until(now)}")
        try:
            self.breaker.check()  # the cheap refusal, before any retry machinery
        except CircuitOpen:
            self._count("CIRCUIT_OPEN")
            raise
        self.budget.record_call()
        # The first attempt runs without the retry machinery, which costs more CPU than a department call's own
        # bookkeeping; a retryable failure is handed to it as its first attempt's outcome, so whether, when and how
        # it retries is decided exactly as for an attempt it made itself.
        try:
            return await self._attempt(fn, deadline)
        except Exception as exc:
            if not _retryable(exc):
                raise
            failed: Exception | None = exc
        retrying = AsyncRetrying(
            stop=lambda state: self._stop(state, deadline),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                return await self._attempt(fn, deadline)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _attempt(self, fn: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time()
        limit = started + self.timeout
        cut_by_deadline = deadline is not None and deadline < limit
        if deadline is not None and cut_by_deadline:
            limit = deadline
            if limit <= started:
                raise SourceTimeout(self.name, "no time left before the request's deadline")
        try:
            self.breaker.acquire()
        except CircuitOpen:
            self._count("CIRCUIT_OPEN")
            raise
        try:
            async with asyncio.timeout_at(limit):
                result = await fn()
        except TimeoutError:
            error = SourceTimeout(self.name, f"no answer within {limit - started:.3g}s")
            if cut_by_deadline:  # the request ran out of time; the department may be fine
                self.breaker.release()
                self._count(error.code, loop.time() - started)
            else:
                self._outcome(error, loop.time() - started)
            raise error from None
        except Exception as exc:
            self._outcome(exc, loop.time() - started)
            raise
        except BaseException:  # cancelled: says nothing about the department
            self.breaker.release()
            raise
        self._outcome(None, loop.time() - started)
        return result

    def _outcome(self, error: BaseException | None, seconds: float) -> None:
        self.breaker.record(error)
        if isinstance(error, SourceError):
            self.last_error = (error, self._now())
        code = "ok" if error is None else error.code if isinstance(error, GatewayError) else "INTERNAL"
        self._count(code, seconds)

    def _count(self, outcome: str, seconds: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.source_call(self.name, outcome, seconds)

    def _stop(self, state: RetryCallState, deadline: float | None) -> bool:
        """Whether to give up rather than retry; the budget is spent only on a retry that will happen."""
        if state.attempt_number >= self.retry.attempts:
            return True
        if self.breaker.state is BreakerState.OPEN:  # the failure opened it: a retry would only be refused
            return True
        if deadline is not None:
            # A retry is made only if its wait and a whole attempt fit before the deadline.
            finish = asyncio.get_running_loop().time() + (state.upcoming_sleep or 0.0) + self.timeout
            if finish > deadline:
                return True
        return not self.budget.try_spend()

    def _before_sleep(self, state: RetryCallState) -> None:
        if self._metrics is not None:
            self._metrics.source_retry(self.name)

    def status(self) -> dict[str, Any]:
        """For ``/readyz``: breaker state, an active maintenance window and the last error.

        ``{"breaker": "open", "retry_in": 12.5, "consecutive_failures": 5, "maintenance": None,
        "last_error": {"code": "SOURCE_TIMEOUT", "message": "...", "at": "2026-06-05T08:00:00+00:00"}}``
        """
        now = self._now()
        period = self.maintenance.active(now) if self.maintenance else None
        last = None
        if self.last_error is not None:
            error, at = self.last_error
            last = {"code": error.code, "message": error.reason, "at": at.isoformat()}
        return {
            "breaker": self.breaker.state.value,
            "retry_in": round(self.breaker.retry_in(), 3),
            "consecutive_failures": self.breaker.consecutive_failures,
            "opened_count": self.breaker.opened_count,
            "maintenance": None if period is None else {"until": period.end.isoformat()},
            "last_error": last,
        }
