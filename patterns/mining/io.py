"""Reading user-permission matrices and writing mined roles.

Formats:

- ``pairs`` (HP Labs data sets): one assignment per line, ``<user> <permission>``, separated by
  whitespace. Blank lines and lines starting with ``#`` are ignored.
- ``rmp`` (RMPlib): a ``#`` comment header, then one line per user,
  ``u<id>\\tp<id>\\tp<id>...`` (tabs or spaces; the file may start with a UTF-8 BOM). Ids are
  kept as written (``u0``, ``p12``).

Ids are kept as strings exactly as they appear in the input. Bad input raises
:class:`UpaFormatError` naming the line and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .engine import MiningResult, Role

FORMATS = ("pairs", "rmp")


class UpaFormatError(ValueError):
    def __init__(self, source: str, line: int, reason: str):
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}" if line else f"{source}: {reason}")


def _lines(data: bytes, source: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UpaFormatError(source, line, "not valid UTF-8 text") from exc
    return text.splitlines()


def parse_pairs(data: bytes, source: str = "<input>") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for number, line in enumerate(_lines(data, source), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split()
        if len(fields) != 2:
            raise UpaFormatError(
                source,
                number,
                f"expected 2 fields '<user> <permission>', found {len(fields)}",
            )
        out.append((fields[0], fields[1]))
    if not out:
        raise UpaFormatError(source, 0, "no assignments found")
    return out


def parse_rmp(data: bytes, source: str = "<input>") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen_users: dict[str, int] = {}
    for number, line in enumerate(_lines(data, source), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split()
        user = fields[0]
        if not user.startswith("u") or len(user) == 1:
            raise UpaFormatError(source, number, f"expected a user id 'u<id>', found {user!r}")
        if user in seen_users:
            raise UpaFormatError(
                source, number, f"user {user} is listed twice (first on line {seen_users[user]})"
            )
        seen_users[user] = number
        for perm in fields[1:]:
            if not perm.startswith("p") or len(perm) == 1:
                raise UpaFormatError(
                    source, number, f"expected a permission id 'p<id>', found {perm!r}"
                )
            out.append((user, perm))
    if not out:
        raise UpaFormatError(source, 0, "no assignments found")
    return out


def read_upa(path: str | Path, fmt: str = "pairs") -> list[tuple[str, str]]:
    """Read a user-permission matrix file as a list of (user, permission) pairs."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    data = path.read_bytes()
    return (parse_pairs if fmt == "pairs" else parse_rmp)(data, str(path))


def roles_to_json(roles: Iterable[Role], stats: dict | None = None) -> dict:
    doc: dict = {
        "roles": [{"users": list(r.users), "permissions": list(r.permissions)} for r in roles]
    }
    if stats is not None:
        doc["stats"] = stats
    return doc


def result_stats(result: MiningResult) -> dict:
    return {
        "roles": len(result.roles),
        "lower_bound": result.lower_bound,
        "optimal": result.optimal,
        "verified": result.exact,
        "seconds": round(result.elapsed, 3),
        **{k: v for k, v in result.stats.items() if k != "problems"},
    }


def write_roles(path: str | Path, result: MiningResult) -> None:
    """Write the roles as JSON, one role per line (valid JSON, readable diffs)."""
    doc = roles_to_json(result.roles, stats=result_stats(result))
    lines = ",\n  ".join(json.dumps(role) for role in doc["roles"])
    text = '{"roles": [\n  ' + lines + '\n],\n"stats": ' + json.dumps(doc["stats"]) + "}\n"
    Path(path).write_text(text, encoding="utf-8")
