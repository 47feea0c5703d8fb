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

Sets are Python ints used as bitsets (bit i = merged user/permission i).
"""

from __future__ import annotations

import heapq
import random
import time
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


def _bits(x: int):
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


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


# ---------------------------------------------------------------------------------------------
# The solver works on merged, indexed bitsets.


class _State:
    """Coverage state: uncovered permissions per user and uncovered users per permission."""

    __slots__ = ("unc", "ucols", "roles", "forced")

    def __init__(self, unc: list[int], ucols: list[int]):
        self.unc = unc
        self.ucols = ucols
        self.roles: list[tuple[int, int]] = []
        self.forced = 0  # roles taken by the reduction before any heuristic choice

    def copy(self) -> _State:
        s = _State(self.unc[:], self.ucols[:])
        s.roles = self.roles[:]
        s.forced = self.forced
        return s

    def remaining(self) -> int:
        return sum(x.bit_count() for x in self.unc)


class _Solver:
    def __init__(self, rows: list[int], cols: list[int], deadline: float, rng: random.Random):
        self.rows = rows
        self.cols = cols
        self.m = len(rows)
        self.n = len(cols)
        self.all_users = (1 << self.m) - 1
        self.all_perms = (1 << self.n) - 1
        self.deadline = deadline
        self.rng = rng

    # -- basic operations -------------------------------------------------------------------

    def close_perms(self, perms: int) -> tuple[int, int]:
        """The concept generated by a permission set: (users holding all, their common perms)."""
        users = self.all_users
        cols = self.cols
        for p in _bits(perms):
            users &= cols[p]
        common = self.all_perms
        rows = self.rows
        for u in _bits(users):
            common &= rows[u]
        return users, common

    def close_users(self, users: int) -> tuple[int, int]:
        perms = self.all_perms
        rows = self.rows
        for u in _bits(users):
            perms &= rows[u]
        common = self.all_users
        cols = self.cols
        for p in _bits(perms):
            common &= cols[p]
        return common, perms

    @staticmethod
    def take(state: _State, users: int, perms: int) -> None:
        state.roles.append((users, perms))
        unc, ucols = state.unc, state.ucols
        not_p = ~perms
        for u in _bits(users):
            unc[u] &= not_p
        not_u = ~users
        for p in _bits(perms):
            ucols[p] &= not_u

    def gain(self, state: _State, users: int, perms: int) -> int:
        unc = state.unc
        return sum((unc[u] & perms).bit_count() for u in _bits(users))

    # -- reduction ----------------------------------------------------------------------------

    def _neighbourhood_sums(self, state: _State) -> tuple[list[int], list[int]]:
        """X[u] = users sharing an uncovered assignment with u's permissions;
        Y[p] = permissions uncovered for some holder of p."""
        rows, cols, unc, ucols = self.rows, self.cols, state.unc, state.ucols
        xs = [0] * self.m
        ys = [0] * self.n
        for p, uc in enumerate(ucols):
            if uc:
                for u in _bits(cols[p]):
                    xs[u] |= uc
        for u, up in enumerate(unc):
            if up:
                for p in _bits(rows[u]):
                    ys[p] |= up
        return xs, ys

    def _is_biclique(self, users: int, perms: int) -> bool:
        if users.bit_count() <= perms.bit_count():
            rows = self.rows
            for u in _bits(users):
                if rows[u] & perms != perms:
                    return False
        else:
            cols = self.cols
            for p in _bits(perms):
                if cols[p] & users != users:
                    return False
        return True

    def reduce(self, state: _State) -> int:
        """Take essential roles until none is left; return how many were taken."""
        taken = 0
        rows, cols, unc = self.rows, self.cols, state.unc
        while True:
            xs, ys = self._neighbourhood_sums(state)
            before = taken
            for u in range(self.m):
                if not unc[u]:
                    continue
                xu, ru = xs[u], rows[u]
                for p in _bits(unc[u]):
                    if not (unc[u] >> p) & 1:
                        continue  # covered by a role taken in this pass
                    users = cols[p] & xu
                    perms = ru & ys[p]
                    if self._is_biclique(users, perms):
                        cu, cp = self.close_perms(perms)
                        self.take(state, cu, cp)
                        taken += 1
                    if not unc[u]:
                        break
            if taken == before:
                return taken

    # -- lower bound --------------------------------------------------------------------------

    def lower_bound(self, state: _State) -> int:
        """Size of a greedy set of pairwise incompatible uncovered assignments."""
        rows, cols, unc = self.rows, self.cols, state.unc
        xs, ys = self._neighbourhood_sums(state)
        edges = []
        exact_degree = state.remaining() <= 20_000
        for u in range(self.m):
            for p in _bits(unc[u]):
                users = cols[p] & xs[u]
                perms = rows[u] & ys[p]
                if exact_degree:  # uncovered compatible assignments
                    degree = sum((unc[v] & perms).bit_count() for v in _bits(users))
                else:  # a cheap proxy on big residuals
                    degree = users.bit_count() * perms.bit_count()
                edges.append((degree, u, p))
        edges.sort()
        chosen_users = 0
        user_of_perm: dict[int, int] = {}
        perm_of_user: dict[int, int] = {}
        chosen_perms = 0
        for _deg, u, p in edges:
            if (chosen_users >> u) & 1 or (chosen_perms >> p) & 1:
                continue  # same user or same permission: always compatible
            cand_p = rows[u] & chosen_perms
            cand_u = cols[p] & chosen_users
            ok = True
            if cand_p.bit_count() <= cand_u.bit_count():
                colp = cols[p]
                for p2 in _bits(cand_p):
                    if (colp >> user_of_perm[p2]) & 1:
                        ok = False
                        break
            else:
                rowu = rows[u]
                for u2 in _bits(cand_u):
                    if (rowu >> perm_of_user[u2]) & 1:
                        ok = False
                        break
            if ok:
                chosen_users |= 1 << u
                chosen_perms |= 1 << p
                user_of_perm[p] = u
                perm_of_user[u] = p
        return len(user_of_perm)

    # -- heuristic ----------------------------------------------------------------------------

    def candidates(self, state: _State) -> list[tuple[int, int]]:
        """Closed concepts: one per user, one per permission, and the closures of pairwise
        intersections of users (and of permissions) that still have uncovered assignments."""
        rows, cols = self.rows, self.cols
        seen: set[int] = set()
        out = []

        def add(cu: int, cp: int) -> None:
            if cp not in seen:
                seen.add(cp)
                out.append((cu, cp))

        for u in range(self.m):
            add(*self.close_perms(rows[u]))
        for p in range(self.n):
            add(*self.close_users(cols[p]))
        unc, ucols = state.unc, state.ucols
        active_users = [u for u in range(self.m) if unc[u]]
        active_perms = [p for p in range(self.n) if ucols[p]]
        budget = 200_000  # pair closures; bounded so huge residuals stay fast
        for act, vec, need, close in (
            (active_users, rows, unc, self.close_perms),
            (active_perms, cols, ucols, self.close_users),
        ):
            for i, a in enumerate(act):
                if budget <= 0 or time.perf_counter() > self.deadline:
                    break
                va, na = vec[a], need[a]
                for b in act[i + 1 :]:
                    x = va & vec[b]
                    if x & (na | need[b]):
                        budget -= 1
                        cu, cp = close(x)
                        add(cu, cp)
        return out

    def greedy(self, state: _State, cands: list[tuple[int, int]], noise: float) -> _State:
        """Largest-gain concept first, re-running the reduction after each pick.

        With ``noise`` > 0, ties break randomly and the best candidate is passed over with that
        probability (a randomised restart)."""
        state = state.copy()
        rng = self.rng
        heap = []
        unc, ucols = state.unc, state.ucols
        active_users = sum(1 << u for u in range(self.m) if unc[u])
        active_perms = sum(1 << p for p in range(self.n) if ucols[p])
        for i, (cu, cp) in enumerate(cands):
            if not (cu & active_users and cp & active_perms):
                continue
            g = sum((unc[u] & cp).bit_count() for u in _bits(cu & active_users))
            if g:
                heap.append((-g, rng.random() if noise else i, i))
        heapq.heapify(heap)
        # The reduction is what makes the greedy good on structured data, but on dense,
        # unstructured data it rarely fires; back off exponentially while it finds nothing,
        # and stop calling it once the deadline has passed (the greedy alone still finishes).
        interval = wait = 1
        while True:
            wait -= 1
            if wait <= 0 and time.perf_counter() < self.deadline:
                interval = 1 if self.reduce(state) else min(interval * 2, 64)
                wait = interval
            if not any(unc):
                return state
            picked = None
            while heap:
                _neg, _tie, i = heapq.heappop(heap)
                cu, cp = cands[i]
                g = sum((unc[u] & cp).bit_count() for u in _bits(cu))
                if not g:
                    continue
                if heap and g < -heap[0][0]:
                    heapq.heappush(heap, (-g, rng.random() if noise else i, i))
                    continue
                if noise and heap and rng.random() < noise:
                    heapq.heappush(heap, (-g + 0.5, rng.random(), i))  # passed over once
                    continue
                picked = i
                break
            if picked is None:
                # the user concepts cover every assignment, so this cannot happen
                raise AssertionError("greedy ran out of candidates")
            self.take(state, *cands[picked])

    def prune(self, roles: list[tuple[int, int]], need: list[int]) -> list[tuple[int, int]]:
        """Drop roles whose needed cells are all covered by other roles (last taken first)."""
        count: dict[tuple[int, int], int] = {}
        cells_of = []
        for cu, cp in roles:
            cells = [(u, p) for u in _bits(cu) for p in _bits(cp & need[u])]
            cells_of.append(cells)
            for c in cells:
                count[c] = count.get(c, 0) + 1
        keep = []
        for role, cells in zip(reversed(roles), reversed(cells_of), strict=True):
            if all(count[c] > 1 for c in cells):
                for c in cells:
                    count[c] -= 1
            else:
                keep.append(role)
        keep.reverse()
        return keep

    def exact(
        self, state: _State, incumbent: int, max_cells: int = 400, max_concepts: int = 20_000
    ) -> tuple[list[tuple[int, int]] | None, bool]:
        """Branch and bound over every concept for a small residual.

        Any role's useful part is its users that still have uncovered assignments, so the
        concepts generated by intersections of those users' permission sets suffice. Returns
        (a cover smaller than ``incumbent`` or None, whether the search finished, i.e. proved
        that nothing smaller exists)."""
        unc, rows = state.unc, self.rows
        active = [u for u in range(self.m) if unc[u]]
        cell_index: dict[tuple[int, int], int] = {}
        for u in active:
            for p in _bits(unc[u]):
                cell_index[(u, p)] = len(cell_index)
        if not cell_index:
            return [], True
        if len(cell_index) > max_cells:
            return None, False
        intents: set[int] = set()
        for u in active:
            r = rows[u]
            grown = {r}
            for i in intents:
                x = i & r
                if x:
                    grown.add(x)
            intents |= grown
            if len(intents) > max_concepts or time.perf_counter() > self.deadline:
                return None, False
        concepts: list[tuple[int, int, int]] = []  # (cell mask, users, perms)
        seen_masks: set[int] = set()
        for intent in intents:
            cu, cp = self.close_perms(intent)
            mask = 0
            for u in _bits(cu):
                for p in _bits(unc[u] & cp):
                    mask |= 1 << cell_index[(u, p)]
            if mask and mask not in seen_masks:
                seen_masks.add(mask)
                concepts.append((mask, cu, cp))
        # drop concepts whose cells are a subset of another concept's cells
        concepts.sort(key=lambda c: -c[0].bit_count())
        kept: list[tuple[int, int, int]] = []
        for c in concepts:
            if not any(c[0] & k[0] == c[0] for k in kept):
                kept.append(c)
        covers: list[list[int]] = [[] for _ in cell_index]
        for j, (mask, _cu, _cp) in enumerate(kept):
            for c in _bits(mask):
                covers[c].append(j)
        best: list[list[int] | None] = [None]
        bound = [incumbent]
        finished = [True]
        chosen: list[int] = []

        def search(left: int) -> None:
            if not finished[0]:
                return
            if not left:
                if len(chosen) < bound[0]:
                    bound[0] = len(chosen)
                    best[0] = chosen[:]
                return
            if time.perf_counter() > self.deadline:
                finished[0] = False
                return
            room = bound[0] - len(chosen)  # roles we may still add to beat the bound
            if room <= 1:
                # only a single concept covering everything left could help
                for j, (mask, _cu, _cp) in enumerate(kept):
                    if left & mask == left:
                        chosen.append(j)
                        search(0)
                        chosen.pop()
                        return
                return
            largest = max((left & k[0]).bit_count() for k in kept)
            if -(-left.bit_count() // largest) >= room:
                return
            cell = min(_bits(left), key=lambda c: len(covers[c]))
            options = sorted(covers[cell], key=lambda j: -(left & kept[j][0]).bit_count())
            for j in options:
                chosen.append(j)
                search(left & ~kept[j][0])
                chosen.pop()

        search((1 << len(cell_index)) - 1)
        if best[0] is None:
            return None, finished[0]
        return [(kept[j][1], kept[j][2]) for j in best[0]], finished[0]

    def improve(
        self,
        base: _State,
        free: list[tuple[int, int]],
        cands: list[tuple[int, int]],
        target: int,
        on_better: Callable[[int], None],
    ) -> tuple[list[tuple[int, int]], int]:
        """Large-neighbourhood search: drop a few related roles, re-cover what only they
        covered with the reduction and a randomised greedy, keep the result if not worse."""
        rng = self.rng
        need = base.unc
        current = free
        best = free
        steps = 0
        while len(best) > target and time.perf_counter() < self.deadline and len(current) > 1:
            steps += 1
            k = min(len(current), rng.randint(2, 7))
            seed_idx = rng.randrange(len(current))
            su, sp = current[seed_idx]
            scored = sorted(
                (
                    -((su & cu).bit_count() + 1) * ((sp & cp).bit_count() + 1) - rng.random(),
                    j,
                )
                for j, (cu, cp) in enumerate(current)
                if j != seed_idx
            )
            drop = {seed_idx, *(j for _s, j in scored[: k - 1])}
            kept = [r for j, r in enumerate(current) if j not in drop]
            cov = [0] * self.m
            for cu, cp in kept:
                for u in _bits(cu):
                    cov[u] |= cp
            unc = [need[u] & ~cov[u] for u in range(self.m)]
            ucols = [0] * self.n
            for u in range(self.m):
                for p in _bits(unc[u]):
                    ucols[p] |= 1 << u
            sub = self.greedy(_State(unc, ucols), cands, noise=rng.choice((0.0, 0.1, 0.3)))
            trial = self.prune(kept + sub.roles, need)
            if len(trial) <= len(current):
                current = trial
                if len(trial) < len(best):
                    best = trial
                    on_better(len(best))
        return best, steps


# ---------------------------------------------------------------------------------------------
# Public entry point


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
    for i, ps in enumerate(ukeys):
        for p in ps:
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

    roles = []
    for cu, cp in best_roles:
        us = sorted((n for u in _bits(cu) for n in user_names[u]), key=_id_key)
        ps = sorted((n for p in _bits(cp) for n in perm_names[p]), key=_id_key)
        roles.append(Role(tuple(us), tuple(ps)))
    problems = verify_cover(pairs, roles)
    elapsed = time.perf_counter() - start
    report(1.0, f"{len(roles)} roles (lower bound {lb}), verified={not problems}")
    return MiningResult(
        roles=roles,
        lower_bound=lb,
        exact=not problems,
        elapsed=elapsed,
        optimal=len(roles) == lb,
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
