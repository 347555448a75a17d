"""GraphQL Mesh over the demo departments: the gateway OneWindow's benchmark compares itself with (bench/compare.py).

    python bench/mesh.py                    # install Mesh into bench/.mesh/ (npm ci), nothing else

    install()                               # bench/.mesh/node_modules from bench/mesh/package-lock.json
    with mesh_gateway(variables, cache=False) as (url, pid):
        queries = MeshQueries.introspect(url)
        queries.person                       # the workloads' query texts in Mesh's own schema

Mesh is ``@graphql-mesh/cli`` with its ``openapi`` handler (hrss, from the department's own OpenAPI document) and
its ``soap`` handler (public_security and civil_affairs, from their WSDLs), pinned in ``bench/mesh/package.json``
and its lock file and installed with ``npm ci`` into ``bench/.mesh/`` (git-ignored) the first time it is needed.
``mesh build`` then ``mesh start`` serve it on a free loopback port in one process, like ``onewindow serve``
(``serve.fork: false``), logging to ``bench/.mesh/<project>/mesh.log``. With ``cache=True`` Mesh runs its response
cache plugin on its in-memory LRU store, with the same 60 s time to live as the demo configuration's cache.

Mesh names its root fields after the documents it reads (``getInsured`` from the OpenAPI operationId,
``<Definitions>_<Service>_<Port>_<Operation>`` from a WSDL): :meth:`MeshQueries.introspect` finds them in the
running Mesh rather than trusting names written down here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from harness import ROOT, free_port, process, wait_http

__all__ = ["MESH_CACHE", "MESH_PACKAGE", "MeshQueries", "body", "install", "mesh_gateway", "meshrc"]

MESH_PACKAGE = ROOT / "bench" / "mesh"
"""package.json, package-lock.json and .npmrc: the Mesh the benchmark runs, pinned."""
MESH_CACHE = ROOT / "bench" / ".mesh"
"""Where Mesh is installed and its projects built (git-ignored)."""
CACHE_TTL_MS = 60_000
"""The response cache's time to live: the demo configuration's ``cache.ttl`` (60s)."""

_PINNED = ("package.json", "package-lock.json", ".npmrc")
_STAMP = "installed-from.sha256"


def _pinned_digest() -> str:
    digest = hashlib.sha256()
    for name in _PINNED:
        digest.update((MESH_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def install(cache: Path = MESH_CACHE) -> Path:
    """``npm ci`` the pinned Mesh into ``cache`` unless it is there already; the path of its ``mesh`` command."""
    cli = cache / "node_modules" / "@graphql-mesh" / "cli" / "cjs" / "bin.js"
    stamp = cache / _STAMP
    digest = _pinned_digest()
    if cli.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return cli
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("GraphQL Mesh needs Node.js and npm (Node 20 works): apt-get install nodejs npm")
    cache.mkdir(parents=True, exist_ok=True)
    for name in _PINNED:
        shutil.copyfile(MESH_PACKAGE / name, cache / name)
    print(f"installing GraphQL Mesh into {cache} (npm ci) ...", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache, check=True)
    stamp.write_text(digest + "\n")
    return cli


def meshrc(variables: Mapping[str, str], *, port: int, cache: bool, fork: int = 1) -> str:
    """The ``.meshrc.yaml`` of a Mesh over the running demo departments (``variables`` from bench/departments.py)."""
    hrss = variables["DEMO_HRSS_URL"]
    config: dict[str, object] = {
        "sources": [
            # the document's servers entry names the department's usual port: point the calls at the running one
            {"name": "hrss", "handler": {"openapi": {"source": f"{hrss}/openapi.json", "endpoint": hrss}}},
            {"name": "public_security", "handler": {"soap": {"source": variables["DEMO_PUBLIC_SECURITY_WSDL"]}}},
            {"name": "civil_affairs", "handler": {"soap": {"source": variables["DEMO_CIVIL_AFFAIRS_WSDL"]}}},
        ],
        "serve": {"hostname": "127.0.0.1", "port": port, "fork": fork if fork > 1 else False, "browser": False},
    }
    if cache:
        config["cache"] = {"inmemory-lru": {"max": 10_000}}
        config["plugins"] = [{"responseCache": {"ttl": CACHE_TTL_MS}}]
    return yaml.safe_dump(config, sort_keys=False)


@contextmanager
def mesh_gateway(
    variables: Mapping[str, str], *, cache: bool, fork: int = 1, root: Path = MESH_CACHE
) -> Iterator[tuple[str, int]]:
    """``mesh build`` and ``mesh start`` over the demo departments on a free port (``fork`` > 1: a node cluster of
    that many workers): its URL and process id."""
    cli = install(root)
    project = root / ("cached" if cache else "plain")  # inside the install: node resolves Mesh from there
    project.mkdir(exist_ok=True)
    port = free_port()
    (project / ".meshrc.yaml").write_text(meshrc(variables, port=port, cache=cache, fork=fork), encoding="utf-8")
    env = {**os.environ, "NODE_ENV": "production", "DEBUG": ""}
    log = project / "mesh.log"
    log.write_text("")  # this run's output only
    build = subprocess.run(["node", str(cli), "build", "--dir", str(project)], env=env, capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"mesh build failed in {project}:\n{build.stdout[-2000:]}{build.stderr[-2000:]}")
    url = f"http://127.0.0.1:{port}"
    # node itself, not npx: the process whose CPU time and RSS are read is the one serving
    with process(["node", str(cli), "start", "--dir", str(project)], env=env, log=log) as proc:
        wait_http(f"{url}/healthcheck")
        yield url, proc.pid


@dataclass(frozen=True)
class MeshQueries:
    """The benchmark's workloads as queries in Mesh's generated schema (variables ``$id``, and ``$card`` for SOAP).

    Mesh has no unified ``Person``: a fan-out is one root field per department, each given the ID number.
    """

    insured: str
    query_person: str
    query_marriage: str

    @classmethod
    def introspect(cls, url: str) -> MeshQueries:
        """The root fields of the running Mesh at ``url`` that the workloads need."""
        query = "{ __schema { queryType { fields { name } } } }"
        answer = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30).json()
        names = [str(field["name"]) for field in answer["data"]["__schema"]["queryType"]["fields"]]

        def one(suffix: str) -> str:
            found = [name for name in names if name == suffix or name.endswith(f"_{suffix}")]
            if len(found) != 1:
                raise RuntimeError(f"Mesh at {url} has no single root field for {suffix}: {names}")
            return found[0]

        return cls(insured=one("getInsured"), query_person=one("QueryPerson"), query_marriage=one("QueryMarriage"))

    @property
    def person(self) -> str:
        """Workload a: one person's social insurance (hrss, REST)."""
        return (
            f"query($id: IdNumber!) {{ insurance: {self.insured}(idNumber: $id) "
            "{ ... on InsuredRecord { insured months city } } }"
        )

    @property
    def fanout(self) -> str:
        """Workload b: name (public_security, SOAP 1.1), marital status (civil_affairs, SOAP 1.2) and social
        insurance (hrss, REST)."""
        return (
            f"query($id: IdNumber!, $card: String) {{ "
            f"person: {self.query_person}(QueryPerson: {{IdCardNo: $card}}) {{ Person {{ XM }} }} "
            f"marriage: {self.query_marriage}(QueryMarriage: {{IdCardNo: $card}}) "
            "{ MarriageRecord { MarriageStatus } } "
            f"insurance: {self.insured}(idNumber: $id) {{ ... on InsuredRecord {{ insured }} }} }}"
        )

    @property
    def marriage_insurance(self) -> str:
        """Workload b without the SOAP 1.1 department: marital status (SOAP 1.2) and social insurance (REST)."""
        return (
            f"query($id: IdNumber!, $card: String) {{ "
            f"marriage: {self.query_marriage}(QueryMarriage: {{IdCardNo: $card}}) "
            "{ MarriageRecord { MarriageStatus } } "
            f"insurance: {self.insured}(idNumber: $id) {{ ... on InsuredRecord {{ insured }} }} }}"
        )


def body(query: str, id_number: str) -> str:
    """A Mesh request body: the ID number as ``$id`` (the OpenAPI ``IdNumber`` scalar) and ``$card`` (SOAP's
    ``xs:string``); a query declares only the variables it uses, and GraphQL ignores the other."""
    return json.dumps({"query": query, "variables": {"id": id_number, "card": id_number}}, ensure_ascii=False)


if __name__ == "__main__":
    print(install())
