"""The role-mining engine (P2): exact covers, minimality on known cases, I/O and the command."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.mining import (
    MiningError,
    Role,
    UpaFormatError,
    mine_roles,
    read_upa,
    verify_cover,
)

ROOT = Path(__file__).resolve().parents[2]
HC = ROOT / "tests" / "data" / "rolemining" / "hc.txt"

# Three overlapping roles; (u1,p1), (u2,p3), (u3,p4) are pairwise incompatible, so 3 is optimal.
THREE_ROLES = [
    ("u1", "p1"), ("u1", "p2"), ("u2", "p1"), ("u2", "p2"),  # {u1,u2} x {p1,p2}
    ("u2", "p3"), ("u3", "p2"), ("u3", "p3"),  # {u2,u3} x {p2,p3}
    ("u1", "p4"), ("u3", "p4"),  # {u1,u3} x {p4}
]  # fmt: skip


def _cells(roles):
    return {(u, p) for r in roles for u in r.users for p in r.permissions}


def _brute_force_optimum(pairs):
    """Minimum number of bicliques covering ``pairs`` exactly (tiny inputs only)."""
    upa = set(pairs)
    users = sorted({u for u, _ in upa})
    perms = sorted({p for _, p in upa})
    concepts = set()
    for k in range(1, len(users) + 1):
        for group in itertools.combinations(users, k):
            common = frozenset(p for p in perms if all((u, p) in upa for u in group))
            if common:
                holders = frozenset(u for u in users if all((u, p) in upa for p in common))
                concepts.add(frozenset((u, p) for u in holders for p in common))
    concepts = list(concepts)
    for size in range(1, len(upa) + 1):
        for combo in itertools.combinations(concepts, size):
            if frozenset().union(*combo) == upa:
                return size
    raise AssertionError("no cover")


@pytest.mark.sqlite
def test_three_overlapping_roles_found_exactly():
    result = mine_roles(THREE_ROLES, time_limit=5)
    assert result.exact is True
    assert len(result.roles) == 3
    assert result.lower_bound == 3
    assert result.optimal is True
    assert {(r.users, r.permissions) for r in result.roles} == {
        (("u1", "u2"), ("p1", "p2")),
        (("u2", "u3"), ("p2", "p3")),
        (("u1", "u3"), ("p2", "p4")),
    }
    assert _cells(result.roles) == set(THREE_ROLES)


def test_diagonal_needs_one_singleton_role_per_assignment():
    pairs = [(f"u{i}", f"p{i}") for i in range(6)]
    result = mine_roles(pairs, time_limit=5)
    assert result.exact is True
    assert sorted((r.users, r.permissions) for r in result.roles) == [
        ((f"u{i}",), (f"p{i}",)) for i in range(6)
    ]
    assert result.lower_bound == 6


def test_identical_users_and_permissions_share_one_role():
    pairs = [(u, p) for u in ("a", "b", "c") for p in ("x", "y")]
    result = mine_roles(pairs, time_limit=5)
    assert [(r.users, r.permissions) for r in result.roles] == [(("a", "b", "c"), ("x", "y"))]
    assert result.stats["merged_users"] == 1
    assert result.stats["merged_permissions"] == 1


@pytest.mark.parametrize(("n", "optimum"), [(4, 4), (6, 4), (8, 5)])
def test_crown_matrix_exact_search_reaches_known_optimum(n, optimum):
    # user i holds every permission but i: the minimum cover is the least k with
    # C(k, k // 2) >= n (no essential roles, so this exercises the search)
    pairs = [(f"u{i}", f"p{j}") for i in range(n) for j in range(n) if i != j]
    result = mine_roles(pairs, time_limit=20)
    assert result.exact is True
    assert len(result.roles) == optimum
    assert result.optimal is True
    assert result.lower_bound == optimum


def test_progress_is_reported_and_ids_stay_strings():
    calls = []
    result = mine_roles([(1, 10), (2, 10)], time_limit=1, progress=lambda f, m: calls.append(f))
    assert [(r.users, r.permissions) for r in result.roles] == [(("1", "2"), ("10",))]
    assert calls[0] < calls[-1] == 1.0


def test_empty_input_is_refused():
    with pytest.raises(MiningError, match="no assignments"):
        mine_roles([], time_limit=1)


@pytest.mark.sqlite
def test_verify_cover_accepts_an_exact_cover_and_catches_wrong_ones():
    good = [
        Role(("u1", "u2"), ("p1", "p2")),
        Role(("u2", "u3"), ("p2", "p3")),
        Role(("u1", "u3"), ("p4",)),
    ]
    assert verify_cover(THREE_ROLES, good) == []
    # a role that grants (u1, p3), which u1 does not hold
    over = [*good[:1], Role(("u1", "u2", "u3"), ("p2", "p3")), good[2]]
    assert verify_cover(THREE_ROLES, over) == ["role 1 grants (u1, p3), which is not an assignment"]
    # a cover that misses (u3, p4)
    under = [*good[:2], Role(("u1",), ("p4",))]
    assert verify_cover(THREE_ROLES, under) == ["1 assignments are not covered, e.g. (u3, p4)"]
    assert verify_cover(THREE_ROLES, [Role((), ("p1",))])[0] == "role 0 is empty"


@pytest.mark.sqlite
def test_healthcare_reaches_the_published_optimum_of_14():
    pairs = read_upa(HC, "pairs")
    assert len(pairs) == 1486
    result = mine_roles(pairs, time_limit=30)
    assert len(result.roles) <= 14
    assert result.exact is True
    assert verify_cover(pairs, result.roles) == []
    assert result.lower_bound == 14
    assert result.stats["users"] == 46
    assert result.stats["permissions"] == 46


small_upa = st.sets(
    st.tuples(st.integers(0, 5).map(lambda i: f"u{i}"), st.integers(0, 5).map(lambda i: f"p{i}")),
    min_size=1,
    max_size=24,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_upa)
def test_random_matrices_always_get_an_exact_cover_within_the_bounds(pairs):
    result = mine_roles(sorted(pairs), time_limit=0.2)
    assert result.exact is True
    assert verify_cover(pairs, result.roles) == []
    assert _cells(result.roles) == set(pairs)
    assert result.lower_bound <= len(result.roles)
    assert result.optimal == (result.lower_bound == len(result.roles))


@settings(max_examples=40, deadline=None)
@given(
    st.sets(
        st.tuples(
            st.integers(0, 3).map(lambda i: f"u{i}"), st.integers(0, 3).map(lambda i: f"p{i}")
        ),
        min_size=1,
    )
)
def test_lower_bound_never_exceeds_the_true_optimum(pairs):
    result = mine_roles(sorted(pairs), time_limit=0.5)
    optimum = _brute_force_optimum(pairs)
    assert result.lower_bound <= optimum <= len(result.roles)
    if result.optimal:
        assert len(result.roles) == optimum


# -- I/O ------------------------------------------------------------------------------------


def _write(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pairs_reader_skips_blanks_and_comments(tmp_path):
    path = _write(tmp_path, "a.txt", b"# header\n  1   7\n\n2\t7\r\n")
    assert read_upa(path, "pairs") == [("1", "7"), ("2", "7")]


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"1 2\n3 4 5\n", 2, "expected 2 fields '<user> <permission>', found 3"),
        (b"1 2\n\n7\n", 3, "expected 2 fields '<user> <permission>', found 1"),
        (b"1 2\n\xff\xfe 3\n", 2, "not valid UTF-8 text"),
        (b"\n# only a comment\n", 0, "no assignments found"),
    ],
)
def test_pairs_reader_errors_name_line_and_reason(tmp_path, data, line, reason):
    path = _write(tmp_path, "bad.txt", data)
    with pytest.raises(UpaFormatError) as info:
        read_upa(path, "pairs")
    assert info.value.line == line
    assert info.value.reason == reason
    assert str(info.value) == (f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


def test_rmp_reader_handles_bom_header_crlf_and_empty_users(tmp_path):
    data = "\ufeff# Name: x\r\n# Number of users: 3\r\n\r\nu0\tp1\tp4\r\nu1\r\nu2\tp4\r\n"
    path = _write(tmp_path, "x.rmp", data.encode())
    assert read_upa(path, "rmp") == [("u0", "p1"), ("u0", "p4"), ("u2", "p4")]


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"# h\nu0\tp1\nx1\tp2\n", 3, "expected a user id 'u<id>', found 'x1'"),
        (b"u0\tp1\tq2\n", 1, "expected a permission id 'p<id>', found 'q2'"),
        (b"u0\tp1\nu0\tp2\n", 2, "user u0 is listed twice (first on line 1)"),
        (b"# h\nu0\n", 0, "no assignments found"),
    ],
)
def test_rmp_reader_errors_name_line_and_reason(tmp_path, data, line, reason):
    path = _write(tmp_path, "bad.rmp", data)
    with pytest.raises(UpaFormatError) as info:
        read_upa(path, "rmp")
    assert (info.value.line, info.value.reason) == (line, reason)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        read_upa(_write(tmp_path, "a.txt", b"1 2\n"), "csv")


# -- the command ---------------------------------------------------------------------------


@pytest.mark.sqlite
def test_command_writes_roles_json_and_prints_figures(tmp_path):
    upa = _write(tmp_path, "three.txt", "".join(f"{u} {p}\n" for u, p in THREE_ROLES).encode())
    out_path = tmp_path / "roles.json"
    out = io.StringIO()
    call_command("mine_roles", "--upa", str(upa), "--out", str(out_path), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "input: 3 users, 4 permissions, 9 assignments"
    assert lines[1] == "roles: 3"
    assert lines[2] == "lower bound: 3 (optimal)"
    assert lines[3].startswith("time: ") and lines[3].endswith("s")
    assert lines[4:] == ["verified: exact cover", f"written: {out_path}"]
    doc = json.loads(out_path.read_text())
    assert sorted(doc) == ["roles", "stats"]
    assert sorted((tuple(r["users"]), tuple(r["permissions"])) for r in doc["roles"]) == [
        (("u1", "u2"), ("p1", "p2")),
        (("u1", "u3"), ("p2", "p4")),
        (("u2", "u3"), ("p2", "p3")),
    ]
    assert doc["stats"]["roles"] == 3
    assert doc["stats"]["lower_bound"] == 3
    assert doc["stats"]["verified"] is True


def test_command_reads_rmp(tmp_path):
    upa = _write(tmp_path, "a.rmp", b"# h\nu0\tp0\tp1\nu1\tp0\tp1\n")
    out_path = tmp_path / "roles.json"
    call_command(
        "mine_roles", "--upa", str(upa), "--format", "rmp", "--out", str(out_path),
        "--time-limit", "2", stdout=io.StringIO(),
    )  # fmt: skip
    doc = json.loads(out_path.read_text())
    assert doc["roles"] == [{"users": ["u0", "u1"], "permissions": ["p0", "p1"]}]


def test_command_bad_input_raises_with_line_and_writes_nothing(tmp_path):
    upa = _write(tmp_path, "bad.txt", b"1 2\n1 2 3\n")
    out_path = tmp_path / "roles.json"
    with pytest.raises(CommandError, match=r"bad\.txt:2: expected 2 fields"):
        call_command("mine_roles", "--upa", str(upa), "--out", str(out_path), stdout=io.StringIO())
    assert not out_path.exists()
    with pytest.raises(CommandError, match="no such file"):
        call_command(
            "mine_roles", "--upa", str(tmp_path / "missing.txt"), "--out", str(out_path),
            stdout=io.StringIO(),
        )  # fmt: skip
    assert not out_path.exists()


def test_command_exit_codes(tmp_path):
    good = _write(tmp_path, "good.txt", b"1 2\n3 2\n")
    bad = _write(tmp_path, "bad.rmp", b"u0\tp1\nu0\tp2\n")
    env = dict(os.environ)

    def run(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "mine_roles", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    ok = run("--upa", str(good), "--out", str(tmp_path / "o.json"), "--time-limit", "1")
    assert ok.returncode == 0, ok.stderr
    assert "roles: 1" in ok.stdout
    failed = run("--upa", str(bad), "--format", "rmp", "--out", str(tmp_path / "p.json"))
    assert failed.returncode == 1
    assert "bad.rmp:2: user u0 is listed twice (first on line 1)" in failed.stderr
    assert not (tmp_path / "p.json").exists()
