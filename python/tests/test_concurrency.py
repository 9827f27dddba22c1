"""Python threads share one store; the GIL is released during native calls."""

import os
import subprocess
import sys
import textwrap
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


def test_a_store_call_releases_the_gil(tmp_path):
    # A real store call that blocks until another Python thread acts: `open` reading its
    # master key file from a FIFO waits until a writer thread writes the key. With the GIL held
    # during the call the writer could never run and the child would hang, so the scenario runs
    # in a child process with a deadline: a hang fails the test instead of stalling the suite.
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    script = textwrap.dedent(f"""
        import base64, os, threading
        import tbsecrets
        key = base64.b64encode(os.urandom(32)) + b"\\n"
        def write_key():
            with open({str(fifo)!r}, "wb") as f:
                f.write(key)
        writer = threading.Thread(target=write_key)
        writer.start()
        with tbsecrets.SecretStorage.open({str(tmp_path / "s.db")!r}, master_key_file={str(fifo)!r}) as store:
            store.create("t", "pw", "TEXT", b"v")
            assert store.get("t", "pw") == b"v"
        writer.join()
        print("opened")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "opened"
