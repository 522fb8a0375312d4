"""The rooms of `mobile_api` import downwards only: the claims services and storage never
import the HTTP edge (`mobile_api.api`) or the workspace (`mobile_api.web`), which build
responses from what the services return.

Two checks: every import statement in those rooms' files (migrations included), read
from the source; and the modules loaded when every claims and storage module is imported
in a fresh interpreter, which also catches an edge module coming in through a third one.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

LOWER_ROOMS = ("mobile_api/claims", "mobile_api/storage")
EDGES = ("mobile_api.api", "mobile_api.web")


def imported_names(source: str, module: str) -> set[str]:
    """Every module an import statement in `source` names (`from a import b` names `a` and
    `a.b`, since b may be a module); `module` resolves relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def edge_imports(names: set[str]) -> set[str]:
    return {n for n in names if any(n == edge or n.startswith(edge + ".") for edge in EDGES)}


def test_the_scan_finds_every_way_of_importing_an_edge() -> None:
    # given imports of the API written three ways, and one of storage
    source = (
        "from mobile_api.api import schemas\n"
        "from mobile_api import web\n"
        "from ..api.schemas import CONTROL_CHARS\n"
        "import mobile_api.storage.models\n"
    )
    # when the scan reads them as a claims module
    found = edge_imports(imported_names(source, "mobile_api.claims.service"))
    # then it names the three edge imports and not storage
    assert found == {
        "mobile_api.api",
        "mobile_api.api.schemas",
        "mobile_api.web",
        "mobile_api.api.schemas.CONTROL_CHARS",
    }


def test_claims_and_storage_modules_import_no_edge() -> None:
    # given every Python file of the claims and storage rooms
    files = [path for room in LOWER_ROOMS for path in sorted((REPO_ROOT / room).rglob("*.py"))]
    assert len(files) > 10
    # then none imports the API or the workspace
    found = {}
    for path in files:
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if edges := edge_imports(imported_names(path.read_text(), module)):
            found[str(path.relative_to(REPO_ROOT))] = sorted(edges)
    assert found == {}


def test_importing_claims_and_storage_loads_no_edge() -> None:
    # given every claims and storage module but the migrations (alembic runs those)
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import mobile_api.claims, mobile_api.storage\n"
        "rooms = (mobile_api.claims, mobile_api.storage)\n"
        "walk = pkgutil.walk_packages\n"
        "found = [m.name for p in rooms for m in walk(p.__path__, p.__name__ + '.')]\n"
        "names = [name for name in found if '.migrations' not in name]\n"
        "for name in names: importlib.import_module(name)\n"
        f"edges = sorted(n for n in sys.modules if n.startswith({EDGES!r}))\n"
        "print(json.dumps([len(names), edges]))\n"
    )
    # when they are imported in a fresh interpreter
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    count, edges = json.loads(out.stdout)
    # then neither the API nor the workspace came with them
    assert count > 10
    assert edges == []
