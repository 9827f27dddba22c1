"""Python threads share one store; the GIL is released during native calls."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import tbsecrets
from tbsecrets import Principal, Role
from conftest import TENANT


def test_threads_read_and_write_one_store(store):
    for i in range(8):
        store.create(TENANT, f"s{i}", "TEXT", f"value-{i}".encode())

    def worker(n):
        seen = 0
        for round_ in range(50):
            name = f"s{(n + round_) % 8}"
            value = store.get(TENANT, name)
            assert value.startswith(b"value-") or value.startswith(b"updated-")
            seen += 1
            if round_ % 10 == 0:
                store.update_value(TENANT, f"s{n}", f"updated-{n}-{round_}".encode())
            resolved = store.resolve_yaml(TENANT, f"k: ${{secret:{name}}}\n")
            assert resolved.startswith('k: "')
        return seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        totals = list(pool.map(worker, range(8)))
    assert totals == [50] * 8
    for n in range(8):
        assert store.get(TENANT, f"s{n}") == f"updated-{n}-40".encode()
        assert store.info(TENANT, f"s{n}").version == 6


def test_sessions_from_many_threads(store):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    errors = []

    def worker():
        with store.session(Principal(TENANT, Role.SERVICE)) as s:
            for _ in range(100):
                if s.get(TENANT, "pw") != b"s3cr3t":
                    errors.append("wrong value")

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_gil_is_released_during_a_native_call():
    # The native call blocks (GIL released, like every store call) until a byte arrives on a
    # pipe; only another Python thread can write it. With the GIL held this would time out.
    read_fd, write_fd = os.pipe()
    try:
        writer = threading.Thread(target=lambda: os.write(write_fd, b"x"))
        results = []
        caller = threading.Thread(
            target=lambda: results.append(tbsecrets._native._wait_fd_without_gil_for_test(read_fd, 30000)))
        caller.start()
        writer.start()
        writer.join()
        caller.join()
        assert results == [True]
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_a_thread_keeps_running_during_a_slow_call(store):
    # A slow call: re-encrypting many versions. A counting thread advances during it: the
    # count read just before the call (GIL held by this thread) is below the one read just
    # after it returns, which only the counter running while the call had the GIL released
    # can explain (the counter is parked on the GIL while this thread runs Python code).
    for i in range(200):
        store.create(TENANT, f"k{i}", "TEXT", b"x" * 100)
    box = [0]
    started = threading.Event()
    done = threading.Event()

    def counter():
        started.set()
        while not done.is_set():
            box[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    started.wait()
    before = box[0]
    report = store.rotate_tenant_key(TENANT)
    after = box[0]
    done.set()
    t.join()
    assert report.versions == 200
    assert after > before
