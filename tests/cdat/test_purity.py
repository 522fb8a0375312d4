"""The domain core stays plain Python: no framework comes in with any `cdat` module.

The frameworks are every dependency `pyproject.toml` declares (serving, training and dev
extras alike) but the three the core is allowed: pydantic and pydantic-settings for the
one settings object, PyYAML for its data files. A dependency added later is covered
without touching this test; so is a `cdat` module added later.
"""

from __future__ import annotations

import importlib.metadata
import json
import pkgutil
import re
import subprocess
import sys
import tomllib

import cdat
from tests.conftest import REPO_ROOT

ALLOWED_IN_CORE = frozenset({"pydantic", "pydantic-settings", "pyyaml"})
OUR_SERVICE_PACKAGES = frozenset({"inference", "training", "mobile_api"})


def declared_dependencies() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    specs += [spec for extra in project["optional-dependencies"].values() for spec in extra]
    return {_normalise(re.split(r"[\[<>=!~ ;]", spec)[0]) for spec in specs}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def framework_modules() -> set[str]:
    """Top-level import names of every declared dependency the core may not use."""
    banned = declared_dependencies() - ALLOWED_IN_CORE
    modules = {
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if any(_normalise(dist) in banned for dist in dists)
    }
    return modules | OUR_SERVICE_PACKAGES


def core_modules() -> list[str]:
    found = pkgutil.walk_packages(cdat.__path__, prefix="cdat.")
    return sorted(module.name for module in found)


def frameworks_after_importing(modules: list[str]) -> list[str]:
    """Import `modules` in a fresh interpreter; the framework modules that came with them."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({sorted(framework_modules())!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    found: list[str] = json.loads(out.stdout)
    return found


def test_the_lists_cover_the_frameworks_and_the_whole_core() -> None:
    # given the lists the purity check works from
    frameworks, modules = framework_modules(), core_modules()
    # then they name the web, queue, storage and vision frameworks, and every core module
    assert {"fastapi", "celery", "sqlalchemy", "numpy", "cv2", "torch", "PIL"} <= frameworks
    assert {"cdat.pipeline", "cdat.record", "cdat.settings", "cdat.claims"} <= set(modules)
    files = {
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO_ROOT / "cdat").rglob("*.py")
    }
    assert set(modules) == files - {"cdat"}


def test_the_check_sees_a_framework_that_comes_in() -> None:
    # given a module list that pulls in a framework with the core
    # then the check names it
    assert frameworks_after_importing(["cdat.pipeline", "numpy"]) == ["numpy"]


def test_no_core_module_brings_a_framework() -> None:
    # given a fresh interpreter, when every `cdat` module is imported
    # then none of the declared frameworks, nor our service packages, came with them
    assert frameworks_after_importing(core_modules()) == []
