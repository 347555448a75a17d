"""deploy/Dockerfile, read as Docker would (no engine runs here): built in stages, the final one without build
tools, running as a user other than root, started as ``onewindow serve`` with the settings the gateway reads, and
its HEALTHCHECK -- the very command -- answering for a gateway that is up and failing for one that is not."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from gateway.app import create_app
from gateway.config import parse_config
from gateway.serving import serve_asgi
from gateway.settings import GatewaySettings
from tests.conftest import unused_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "cc ", "libpq-dev", "python3-dev")

Instruction = tuple[str, str]


def _stages() -> list[list[Instruction]]:
    """The instructions of each stage, ``FROM`` first, comments left out."""
    stages: list[list[Instruction]] = []
    for item in DockerfileParser(path=str(DOCKERFILE)).structure:
        instruction, value = item["instruction"], " ".join(item["value"].split())
        if instruction == "FROM":
            stages.append([])
        if stages and instruction != "COMMENT":
            stages[-1].append((instruction, value))
    return stages


def _values(stage: list[Instruction], instruction: str) -> list[str]:
    return [value for name, value in stage if name == instruction]


def _env(stage: list[Instruction]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in _values(stage, "ENV"):
        found |= dict(word.split("=", 1) for word in shlex.split(value))
    return found


def _healthcheck() -> list[str]:
    (value,) = _values(_stages()[-1], "HEALTHCHECK")
    command: list[str] = json.loads(value[value.index("CMD ") + 4 :])
    return command


def test_built_in_stages_and_run_without_build_tools_as_a_user_other_than_root() -> None:
    build, run = _stages()
    assert _values(build, "FROM")[0].endswith(" AS build")
    assert any(tool in " ".join(_values(build, "RUN")) for tool in BUILD_TOOLS)  # wheels without one may compile
    assert not any(tool in " ".join(_values(run, "RUN")) for tool in BUILD_TOOLS)
    assert "apt-get install" not in " ".join(_values(run, "RUN"))
    assert _values(run, "COPY") == ["--from=build /opt/onewindow /opt/onewindow"]  # the environment, no sources
    (user,) = _values(run, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert f"--uid {user.split(':')[0]}" in " ".join(_values(run, "RUN"))


def test_the_image_holds_every_package_the_project_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {value.split()[0] for value in _values(_stages()[0], "COPY")}
    assert packages <= copied
    assert project["project"]["readme"] in " ".join(_values(_stages()[0], "COPY"))
    installed = " ".join(_values(_stages()[0], "RUN"))
    assert re.search(r"pip install '\.\[postgres,redis\]'", installed)  # the drivers of the shared stores


def test_it_starts_onewindow_serve_with_settings_the_gateway_reads() -> None:
    run = _stages()[-1]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert _values(run, "ENTRYPOINT") == ['["onewindow"]']
    assert "onewindow" in project["project"]["scripts"]
    assert _values(run, "CMD") == ['["serve"]']
    env = _env(run)
    settings = {k.removeprefix("ONEWINDOW_").lower(): v for k, v in env.items() if k.startswith("ONEWINDOW_")}
    assert set(settings) <= set(GatewaySettings.model_fields)  # no ONEWINDOW_ variable that nothing reads
    parsed = GatewaySettings.model_validate(settings)
    assert parsed.host == "0.0.0.0"
    assert _values(run, "EXPOSE") == [str(parsed.port)]
    assert str(parsed.config).startswith("/etc/onewindow/")


def test_the_healthcheck_asks_healthz() -> None:
    (value,) = _values(_stages()[-1], "HEALTHCHECK")
    assert "/healthz" in " ".join(_healthcheck())
    assert "--timeout=" in value
    assert "--start-period=" in value


@pytest.fixture
def minimal_app() -> object:
    config = parse_config(
        {
            "security": {"production": False, "rate_limit": None, "rate_limit_per_client": None},
            "cache": {"enabled": False},
            "auth": {"audit": None},
            "sources": {
                "hrss": {
                    "kind": "rest",
                    "department": "HRSS",
                    "base_url": "http://127.0.0.1:1",
                    "queries": {"q": {"path": "/x/{key}"}},
                    "provides": {"Person.name": {"value": "n"}},
                }
            },
        }
    )
    return create_app(config)


async def test_the_healthcheck_command_passes_for_a_gateway_that_is_up_and_fails_otherwise(minimal_app: object) -> None:
    command = [sys.executable if word == "python" else word for word in _healthcheck()]

    async def check(port: int) -> int:
        done = await asyncio.to_thread(
            subprocess.run, command, env={**os.environ, "ONEWINDOW_PORT": str(port)}, capture_output=True, timeout=30
        )
        return done.returncode

    async with serve_asgi(minimal_app) as url:
        assert await check(int(url.rsplit(":", 1)[1])) == 0
    assert await check(unused_port()) != 0
