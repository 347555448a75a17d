"""Fixtures for the demo departments' tests: one dataset per session, on a fixed day."""

from __future__ import annotations

import datetime as dt

import pytest

from demo.data import DEFAULT_SEED, Dataset, build_dataset

TODAY = dt.date(2026, 3, 16)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return build_dataset(DEFAULT_SEED, TODAY)
