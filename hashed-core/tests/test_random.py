from __future__ import annotations

import os

import pytest

from hashed._random import token16


def test_ids_never_repeat_and_look_like_16_random_bytes():
    ids = [token16() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_a_new_prefix():
    read, write = os.pipe()
    parent = token16()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, token16().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != parent[:16]


def test_threads_drawing_at_once_never_get_the_same_id():
    import threading

    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(mine: list[str]) -> None:
        for _ in range(5_000):  # ≈ 300 refills between them
            mine.append(token16())

    threads = [threading.Thread(target=draw, args=(mine,)) for mine in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for mine in drawn for i in mine]
    assert len(every) == 20_000 and len(set(every)) == 20_000
