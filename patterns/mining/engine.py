"""Role mining: a minimum exact cover of a user x permission matrix by roles (bicliques).

This is the *basic role mining problem* (basic RMP), equivalent to the minimum biclique cover
of the bipartite user-permission graph. It is NP-hard, but real access matrices are highly
structured and yield to the reductions of Ene et al., "Fast exact and heuristic methods for
role minimization problems" (SACMAT 2008). The pipeline here (see docs/ROLE_MINING.md):

1. **Merge** identical users and identical permissions (they can always share roles).
2. **Essential roles.** Two assignments are *compatible* when they can sit in one role, i.e.
   (u1, p2) and (u2, p1) are both assignments. When all still-uncovered assignments that are
   compatible with an uncovered assignment ``e`` are also compatible with each other, one
   maximal role covers every one of them; some optimal cover uses it, so it is taken. Covered
   assignments stay usable by later roles ("don't care") but need no more covering. Repeated to
   a fixpoint.
3. **Lower bound.** Uncovered assignments that are pairwise incompatible each need their own
   role; a greedy independent set of them, plus the roles forced in step 2, bounds the optimum.
4. **Greedy with reduction.** Pick the candidate concept (closed user set x permission set)
   covering the most uncovered assignments, then re-run step 2, and repeat. Candidates are the
   concepts of single users and permissions and of pairwise intersections.
5. **Improvement.** Randomised restarts, redundant-role elimination and a large-neighbourhood
   search (drop a few related roles, re-cover what only they covered with steps 2 and 4, keep
   the result when it is not larger) run until the time limit or the lower bound is reached.

Every result is verified to be an exact cover before it is returned.

Sets are Python ints used as bitsets (bit i = merged user/permission i). The solver is in
:mod:`.solver`, the result types and the cover check in :mod:`.results`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable

from .results import MiningError, MiningResult, ProgressFn, Role, verify_cover
from .solver import _bits, _Solver, _State

__all__ = ["MiningError", "MiningResult", "ProgressFn", "Role", "mine_roles", "verify_cover"]


def _id_key(name: str) -> tuple:
    """Natural order: numeric ids by value, then everything else by text."""
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _index(assignments: Iterable[tuple[str, str]]):
    perms_of: dict[str, set[str]] = {}
    for u, p in assignments:
        perms_of.setdefault(str(u), set()).add(str(p))
    if not perms_of:
        raise MiningError("no assignments to mine")
    # merge identical users
    user_classes: dict[frozenset, list[str]] = {}
    for u, ps in perms_of.items():
        user_classes.setdefault(frozenset(ps), []).append(u)
    ukeys = list(user_classes)
    holders: dict[str, int] = {}
    for i, key in enumerate(ukeys):
        for p in key:
            holders[p] = holders.get(p, 0) | (1 << i)
    # merge identical permissions
    perm_classes: dict[int, list[str]] = {}
    for p, us in holders.items():
        perm_classes.setdefault(us, []).append(p)
    cols = list(perm_classes)
    rows = [0] * len(ukeys)
    for j, us in enumerate(cols):
        for u in _bits(us):
            rows[u] |= 1 << j
    users = [sorted(user_classes[k]) for k in ukeys]
    perms = [sorted(perm_classes[c]) for c in cols]
    total = sum(len(ps) for ps in perms_of.values())
    return rows, cols, users, perms, perms_of, total


def mine_roles(
    assignments: Iterable[tuple[str, str]],
    *,
    time_limit: float = 60,
    progress: ProgressFn | None = None,
    seed: int = 0,
) -> MiningResult:
    """Find a small set of roles covering the assignments exactly.

    ``assignments`` are (user, permission) pairs (ids as strings; duplicates are ignored).
    ``progress(fraction, message)`` is called as the search advances. Stops at the time
    limit or when the role count meets the lower bound (then ``optimal`` is true).
    """
    start = time.perf_counter()
    # keep a margin for building and verifying the answer
    deadline = start + max(0.0, time_limit) * 0.95
    best_at = [0.0]

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    def improved(count: int) -> None:
        best_at[0] = time.perf_counter() - start
        report(0.6, f"local search: {count} roles")

    pairs = [(str(u), str(p)) for u, p in assignments]
    rows, cols, user_names, perm_names, perms_of, total = _index(pairs)
    report(0.05, f"{len(perms_of)} users, {total} assignments; merged to {len(rows)}x{len(cols)}")

    solver = _Solver(rows, cols, deadline, random.Random(seed))
    base = _State(rows[:], cols[:])
    forced = solver.reduce(base)
    base.forced = forced
    residual = base.remaining()
    lb = forced + solver.lower_bound(base)
    report(0.2, f"{forced} essential roles; {residual} assignments left; lower bound {lb}")

    free: list[tuple[int, int]] = []
    restarts = lns_steps = 0
    if residual:
        cands = solver.candidates(base)
        need = base.unc
        first = solver.greedy(base, cands, noise=0.0)
        free = solver.prune(first.roles[forced:], need)
        best_at[0] = time.perf_counter() - start
        report(0.4, f"greedy: {forced + len(free)} roles")
        # a few randomised restarts, then large-neighbourhood search from the best
        while (
            forced + len(free) > lb
            and restarts < 10
            and time.perf_counter() < start + 0.25 * (deadline - start)
        ):
            restarts += 1
            trial = solver.greedy(base, cands, noise=0.3)
            roles = solver.prune(trial.roles[forced:], need)
            if len(roles) < len(free):
                free = roles
                best_at[0] = time.perf_counter() - start
                report(0.5, f"restart {restarts}: {forced + len(free)} roles")
        if forced + len(free) > lb:
            found, finished = solver.exact(base, len(free))
            if found is not None and len(found) < len(free):
                free = found
                best_at[0] = time.perf_counter() - start
            if finished:  # exhaustive search: nothing smaller exists
                lb = forced + len(free)
                report(0.6, f"exact search: {forced + len(free)} roles, optimal")
        free, lns_steps = solver.improve(
            base,
            free,
            cands,
            lb - forced,
            lambda k: improved(forced + k),
        )
    best_roles = base.roles[:forced] + free

    mined: list[Role] = []
    for cu, cp in best_roles:
        us = sorted((n for u in _bits(cu) for n in user_names[u]), key=_id_key)
        ps = sorted((n for p in _bits(cp) for n in perm_names[p]), key=_id_key)
        mined.append(Role(tuple(us), tuple(ps)))
    problems = verify_cover(pairs, mined)
    elapsed = time.perf_counter() - start
    report(1.0, f"{len(mined)} roles (lower bound {lb}), verified={not problems}")
    return MiningResult(
        roles=mined,
        lower_bound=lb,
        exact=not problems,
        elapsed=elapsed,
        optimal=len(mined) == lb,
        stats={
            "users": len(perms_of),
            "permissions": len({p for ps in perms_of.values() for p in ps}),
            "assignments": total,
            "merged_users": len(rows),
            "merged_permissions": len(cols),
            "essential_roles": forced,
            "residual_cells": residual,
            "seconds_to_best": round(best_at[0] or elapsed, 3),
            "restarts": restarts,
            "local_search_steps": lns_steps,
            "problems": problems[:5],
        },
    )
