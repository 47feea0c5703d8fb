"""portal.core.memo: a read runs once per key inside a lookup scope, every time outside one."""

from __future__ import annotations

from portal.core.memo import forget, in_scope, lookup_scope, memoized


def counter():
    calls: list[int] = []

    def read():
        calls.append(1)
        return {"stages": [1, 2]}

    return calls, read


def test_outside_a_scope_every_call_reads():
    calls, read = counter()
    assert not in_scope()
    memoized(("k",), read)
    memoized(("k",), read)
    assert len(calls) == 2


def test_inside_a_scope_a_key_is_read_once_and_forgotten_at_its_end():
    calls, read = counter()
    with lookup_scope():
        first = memoized(("k", 1), read)
        assert memoized(("k", 1), read) is first
        memoized(("k", 2), read)
        with lookup_scope():  # a nested scope shares the outer one
            memoized(("k", 1), read)
        assert len(calls) == 2
        forget("k")
        memoized(("k", 1), read)
        assert len(calls) == 3
    memoized(("k", 1), read)
    assert len(calls) == 4


def test_a_copy_protects_the_kept_answer_from_callers_that_change_theirs():
    calls, read = counter()
    with lookup_scope():
        mine = memoized(("k",), read, copy=True)
        mine["stages"].append(3)
        assert memoized(("k",), read, copy=True) == {"stages": [1, 2]}
    assert len(calls) == 1
