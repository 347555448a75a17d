"""The database departments: the education degree registry and the approval platform, as legacy tables.

Education (``education.db``)::

    T_XL_XX   SFZH ID number, XM name, XLMC degree, YXMC school, ZYMC major, BYRQ graduation date,
              ZSBH certificate number (primary key)

Approval platform (``approval.db``)::

    T_SX      SXBM item code, SXMC name, SSBM department, CNSX promised days
    T_BJ      BJBH case number, SXBM item, SQRLX applicant type (1 person, 2 entity), SQRZJHM applicant ID,
              BJZT status code, SLSJ submitted, BJSX deadline, BJSJ closed (NULL while open)
    T_BJ_GC   GCID, BJBH case number, HJ step code, CLSJ time, CLR handler, YJ note
    T_BJ_PJ   BJBH case number (primary key: one rating per case), PJDJ score 1-5, PJNR comment, PJSJ time,
              PJR who recorded it (好差评; empty until the workflow records ratings)

Codes are those of :mod:`demo.model` (``CASE_STATUS_CODES``, ``EVENT_CODES``, ``APPLICANT_KIND_CODES``).
:func:`build_databases` writes SQLite files; :func:`write_education` and :func:`write_approval` write the same
tables into any database SQLAlchemy reaches with a synchronous driver (PostgreSQL, MariaDB...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, Date, DateTime, Engine, Integer, MetaData, String, Table, create_engine

from demo.model import APPLICANT_KIND_CODES, CASE_STATUS_CODES, EVENT_CODES, Dataset, code_of

__all__ = [
    "APPROVAL_DB",
    "APPROVAL_METADATA",
    "EDUCATION_DB",
    "EDUCATION_METADATA",
    "build_databases",
    "education_rows",
    "sqlite_url",
    "write_approval",
    "write_education",
]

EDUCATION_DB = "education.db"
APPROVAL_DB = "approval.db"

EDUCATION_METADATA = MetaData()
Table(
    "T_XL_XX",
    EDUCATION_METADATA,
    Column("ZSBH", String(32), primary_key=True),
    Column("SFZH", String(18), nullable=False, index=True),
    Column("XM", String(32), nullable=False),
    Column("XLMC", String(32), nullable=False),
    Column("YXMC", String(64), nullable=False),
    Column("ZYMC", String(64)),
    Column("BYRQ", Date, nullable=False),
)

APPROVAL_METADATA = MetaData()
Table(
    "T_SX",
    APPROVAL_METADATA,
    Column("SXBM", String(20), primary_key=True),
    Column("SXMC", String(100), nullable=False),
    Column("SSBM", String(50), nullable=False),
    Column("CNSX", Integer, nullable=False),
)
Table(
    "T_BJ",
    APPROVAL_METADATA,
    Column("BJBH", String(20), primary_key=True),
    Column("SXBM", String(20), nullable=False),
    Column("SQRLX", String(1), nullable=False),
    Column("SQRZJHM", String(18), nullable=False, index=True),
    Column("BJZT", String(2), nullable=False, index=True),
    Column("SLSJ", DateTime, nullable=False),
    Column("BJSX", DateTime, nullable=False),
    Column("BJSJ", DateTime),
)
Table(
    "T_BJ_GC",
    APPROVAL_METADATA,
    Column("GCID", Integer, primary_key=True, autoincrement=True),
    Column("BJBH", String(20), nullable=False, index=True),
    Column("HJ", String(8), nullable=False),
    Column("CLSJ", DateTime, nullable=False),
    Column("CLR", String(64)),
    Column("YJ", String(200)),
)
Table(
    "T_BJ_PJ",
    APPROVAL_METADATA,
    Column("BJBH", String(20), primary_key=True),
    Column("PJDJ", Integer, nullable=False),
    Column("PJNR", String(500)),
    Column("PJSJ", DateTime, nullable=False),
    Column("PJR", String(64)),
)


def sqlite_url(path: Path, *, driver: str = "") -> str:
    """``sqlite:////abs/path`` (or ``sqlite+aiosqlite:///...`` with ``driver="aiosqlite"``)."""
    scheme = f"sqlite+{driver}" if driver else "sqlite"
    return f"{scheme}:///{path.resolve()}"


def _write(target: str | Engine, metadata: MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
            for table, table_rows in rows.items():
                if table_rows:
                    conn.execute(metadata.tables[table].insert(), table_rows)
    finally:
        if isinstance(target, str):
            engine.dispose()


def education_rows(dataset: Dataset) -> list[dict[str, Any]]:
    """The rows of ``T_XL_XX``: one per degree, under the legacy column names."""
    return [
        {
            "ZSBH": d.certificate_number,
            "SFZH": p.id_number,
            "XM": p.name,
            "XLMC": d.degree,
            "YXMC": d.school,
            "ZYMC": d.major,
            "BYRQ": d.graduated_on,
        }
        for p in dataset.persons
        for d in p.degrees
    ]


def write_education(target: str | Engine, dataset: Dataset) -> None:
    """(Re)create ``T_XL_XX`` in the database at ``target`` (a sync SQLAlchemy URL or engine)."""
    _write(target, EDUCATION_METADATA, {"T_XL_XX": education_rows(dataset)})


def write_approval(target: str | Engine, dataset: Dataset) -> None:
    """(Re)create ``T_SX``, ``T_BJ``, ``T_BJ_GC`` and (empty) ``T_BJ_PJ`` in the database at ``target``."""
    items = [
        {"SXBM": s.code, "SXMC": s.name, "SSBM": s.department, "CNSX": s.promised_days} for s in dataset.service_items
    ]
    cases = [
        {
            "BJBH": c.case_number,
            "SXBM": c.service_item,
            "SQRLX": code_of(APPLICANT_KIND_CODES, c.applicant_kind),
            "SQRZJHM": c.applicant_id,
            "BJZT": code_of(CASE_STATUS_CODES, c.status),
            "SLSJ": c.submitted_at,
            "BJSX": c.deadline,
            "BJSJ": c.closed_at,
        }
        for c in dataset.cases
    ]
    events = [
        {"BJBH": c.case_number, "HJ": code_of(EVENT_CODES, e.type), "CLSJ": e.at, "CLR": e.handler, "YJ": e.note}
        for c in dataset.cases
        for e in c.events
    ]
    _write(target, APPROVAL_METADATA, {"T_SX": items, "T_BJ": cases, "T_BJ_GC": events, "T_BJ_PJ": []})


def build_databases(directory: Path, dataset: Dataset) -> dict[str, Path]:
    """Write ``education.db`` and ``approval.db`` into ``directory`` (replacing them); department -> file."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"education": directory / EDUCATION_DB, "approval": directory / APPROVAL_DB}
    for path in paths.values():
        path.unlink(missing_ok=True)
    write_education(sqlite_url(paths["education"]), dataset)
    write_approval(sqlite_url(paths["approval"]), dataset)
    return paths
