"""Which characters stored text may hold: the API's schemas and the claims services
(a photo's file name) check the same set."""

from __future__ import annotations

CONTROL_CHARS = frozenset(chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 127])
"""C0 controls but tab and line breaks, and DEL: PostgreSQL cannot store NUL, and none of
them belongs in a description, a name or a file name."""
PRINTABLE_PATTERN = "^[^" + "".join(f"\\x{ord(c):02x}" for c in sorted(CONTROL_CHARS)) + "]*$"


def printable(value: str) -> str:
    if not CONTROL_CHARS.isdisjoint(value):
        raise ValueError("must not contain control characters such as NUL")
    return value
