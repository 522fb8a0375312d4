"""Tests that cannot pass by accident.

`assert client.post(...)` asserts an `httpx.Response`, which is always true whatever the
status; such a line checks nothing. Every test module is scanned for asserts of that kind.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
RESPONSE_HELPERS = frozenset({"upload"})
"""Shared helpers (tests/conftest.py) that return the response itself."""


def always_true_asserts(source: str) -> list[int]:
    """Lines of `assert <a bare HTTP call>`: an object that is always truthy."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Call)):
            continue
        func = node.test.func
        if (isinstance(func, ast.Attribute) and func.attr in HTTP_METHODS) or (
            isinstance(func, ast.Name) and func.id in RESPONSE_HELPERS
        ):
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_an_always_true_assert() -> None:
    # given a test that asserts a response object, and one that asserts its status
    bad = "def test_x(client):\n    assert client.post('/v1/claims')\n"
    good = "def test_x(client):\n    assert client.post('/v1/claims').status_code == 201\n"
    # then the scan flags the first line and not the second
    assert always_true_asserts(bad) == [2]
    assert always_true_asserts(good) == []


def test_no_test_asserts_a_bare_response() -> None:
    # given every test module
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if (lines := always_true_asserts(path.read_text()))
    }
    # then none asserts a response object, which would pass whatever the status
    assert found == {}
