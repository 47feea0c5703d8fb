"""What role mining returns (roles and the result with its statistics) and the check that a
set of roles is an exact cover of the assignments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

ProgressFn = Callable[[float, str], None]


class MiningError(ValueError):
    """The input cannot be mined (for example, it is empty)."""


@dataclass(frozen=True)
class Role:
    users: tuple[str, ...]
    permissions: tuple[str, ...]


@dataclass
class MiningResult:
    roles: list[Role]
    lower_bound: int
    exact: bool  # verified: every role is a biclique of the input and their union is the input
    elapsed: float
    optimal: bool = False  # len(roles) == lower_bound: proven minimum
    stats: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Verification


def verify_cover(
    assignments: Iterable[tuple[str, str]], roles: Iterable[Role | tuple]
) -> list[str]:
    """Return the problems that keep ``roles`` from being an exact cover (empty when exact).

    Exact: every (user, permission) a role grants is an assignment, and every assignment is
    granted by at least one role.
    """
    upa = {(str(u), str(p)) for u, p in assignments}
    problems: list[str] = []
    covered: set[tuple[str, str]] = set()
    for i, role in enumerate(roles):
        users, perms = (role.users, role.permissions) if isinstance(role, Role) else role
        if not users or not perms:
            problems.append(f"role {i} is empty")
            continue
        for u in users:
            for p in perms:
                if (u, p) not in upa:
                    problems.append(f"role {i} grants ({u}, {p}), which is not an assignment")
                    if len(problems) > 20:
                        return problems
                else:
                    covered.add((u, p))
    missing = upa - covered
    if missing:
        sample = ", ".join(f"({u}, {p})" for u, p in sorted(missing)[:5])
        problems.append(f"{len(missing)} assignments are not covered, e.g. {sample}")
    return problems
