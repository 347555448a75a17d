"""``onewindow keys`` against a configuration file and a real SQLite key store."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from auth.apikeys import ApiKeyRefused, ApiKeyStore, RefusalReason
from auth.keys_cli import keys_app
from auth.principal import Principal
from gateway.config import load_config
from tests.auth.samples import API_KEY, COUNTER_A07, write_config
from tests.conftest import unused_port

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    api_keys = {"url": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    return write_config(tmp_path / "onewindow.yaml", auth={"api_keys": api_keys})


def _keys(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(keys_app, list(args), env={"COLUMNS": "200", **(env or {})})


def _authenticate(config: Path, key: str) -> Principal:
    store_config = load_config(config).auth.api_keys
    assert store_config is not None

    async def run() -> Principal:
        async with ApiKeyStore(store_config) as store:
            return await store.authenticate(key)

    return asyncio.run(run())


def _key_id(key: str) -> str:
    return key.split("_", 2)[1]


def _create(config: Path, *args: str) -> str:
    result = _keys("create", "--config", str(config), *args)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert API_KEY.fullmatch(key), result.stdout
    return key


def test_create_authenticate_revoke(config: Path) -> None:
    result = _keys(
        "create",
        "--config",
        str(config),
        "--subject",
        "hall-3-window-7",
        "--kind",
        "clerk",
        "--label",
        "counter A-07",
        "--department",
        "Civil Affairs Bureau",
        "--window",
        "A-07",
        "--role",
        "case_handler",
        "--role",
        "supervisor",
        "--scope",
        "person:read",
        "--expires",
        "90d",
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()  # the key alone on standard output, for scripts
    match = API_KEY.fullmatch(key)
    assert match is not None, result.stdout
    assert "shown once" in result.stderr
    assert match[1] in result.stderr

    principal = _authenticate(config, key)

    assert principal == COUNTER_A07
    assert principal.expires_at == pytest.approx(time.time() + 90 * 86400, abs=60)

    revoked = _keys("revoke", match[1], "--config", str(config))
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked API key {match[1]}" in revoked.stdout

    with pytest.raises(ApiKeyRefused) as refused:
        _authenticate(config, key)
    assert refused.value.reason is RefusalReason.REVOKED


def test_list_shows_each_key_and_status_but_never_a_secret(config: Path) -> None:
    active = _create(config, "--subject", "tax-sync", "--kind", "integrator", "--scope", "person:read")
    revoked = _create(config, "--subject", "window-2", "--kind", "clerk", "--label", "old terminal")
    active_id, revoked_id = _key_id(active), _key_id(revoked)
    assert _keys("revoke", revoked_id, "--config", str(config)).exit_code == 0

    result = _keys("list", "--config", str(config))

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if re.match(r"\s*[0-9a-f]{16}\s", line)}
    assert set(rows) == {active_id, revoked_id}
    assert "active" in rows[active_id]
    assert "integrator" in rows[active_id]
    assert "person:read" in rows[active_id]
    assert "revoked" in rows[revoked_id]
    assert "old terminal" in rows[revoked_id]
    for key in (active, revoked):
        secret = key.split("_", 2)[2]
        assert secret not in result.output
        assert hashlib.sha256(secret.encode()).hexdigest() not in result.output


def test_list_of_an_empty_store(config: Path) -> None:
    result = _keys("list", env={"ONEWINDOW_CONFIG": str(config)})  # the gateway's convention
    assert result.exit_code == 0, result.output
    assert "no API keys" in result.stdout


def test_revoking_an_unknown_id_fails(config: Path) -> None:
    result = _keys("revoke", "0123456789abcdef", "--config", str(config))
    assert result.exit_code == 1
    assert "no API key with id '0123456789abcdef'" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--expires", "soon"], "not a duration"),
        (["--kind", "citizen"], "citizens sign in themselves"),
    ],
)
def test_create_refuses_bad_options(config: Path, args: list[str], says: str) -> None:
    result = _keys("create", "--config", str(config), "--subject", "x", "--kind", "clerk", *args)
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output
    assert _keys("list", "--config", str(config)).stdout.strip() == "no API keys"


def test_without_a_configuration_file(tmp_path: Path) -> None:
    result = _keys("list", env={"ONEWINDOW_CONFIG": None})
    assert result.exit_code == 2
    assert "pass --config or set ONEWINDOW_CONFIG" in result.stderr

    missing = _keys("list", "--config", str(tmp_path / "missing.yaml"))
    assert missing.exit_code == 2
    assert "cannot read configuration file" in missing.stderr


def test_a_configuration_without_api_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path / "onewindow.yaml")
    result = _keys("list", "--config", str(config))
    assert result.exit_code == 2
    assert "no auth.api_keys section" in result.stderr


def test_an_unreachable_store_is_one_clear_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port()}/test"
    config = write_config(tmp_path / "onewindow.yaml", auth={"api_keys": {"url": url}})
    result = _keys("list", "--config", str(config))
    assert result.exit_code == 2
    assert "cannot open the API key store" in result.stderr
    assert "Traceback" not in result.output
