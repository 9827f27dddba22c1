"""Figures: `get` from Python, and rendering a gateway config directory of 20 connectors vs
reading the same files with json.load / yaml.safe_load.

Run: python examples/python/bench.py   (compare with `cargo run --profile wheel --example get_timing`)
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from tbsecrets import SecretStorage, gateway

TENANT = "13814000-1dd2-11b2-8080-808080808080"


def per_call(fn, n):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    with SecretStorage.open(str(tmp / "b.db"), master_key=SecretStorage.generate_master_key(), audit=False) as store:
        store.create(TENANT, "api-key", "TEXT", b"x" * 32)
        n = 200_000
        get = per_call(lambda: store.get(TENANT, "api-key"), n)
        print(f"python get: {get * 1e9:.0f} ns/call ({n} calls)")

        config = tmp / "config"
        config.mkdir()
        connectors = []
        for i in range(20):
            doc = {"broker": {"host": f"h{i}", "port": 1883, "security": {
                "type": "basic", "username": f"${{secret:user{i}}}", "password": f"${{secret:pass{i}}}"}},
                "mapping": [{"topicFilter": f"t/{j}", "converter": {"type": "json", "deviceNameJsonExpression": "${serialNumber}"}} for j in range(20)]}
            (config / f"c{i}.json").write_text(json.dumps(doc, indent=2))
            connectors.append({"type": "mqtt", "name": f"c{i}", "configuration": f"c{i}.json"})
            store.create(TENANT, f"user{i}", "TEXT", f"user-{i}".encode())
            store.create(TENANT, f"pass{i}", "TEXT", f"pass: #{i}".encode())
        (config / "tb_gateway.yaml").write_text(yaml.safe_dump({
            "thingsboard": {"host": "tb", "port": 1883, "security": {"accessToken": "${secret:user0}"}},
            "connectors": connectors}))

        def render():
            out = tmp / "out"
            gateway.render(store, config, out, TENANT)

        def in_memory():
            gateway.resolve_config_dir(store, config, TENANT)

        def plain_load():
            yaml.safe_load((config / "tb_gateway.yaml").read_text())
            for i in range(20):
                with open(config / f"c{i}.json") as f:
                    json.load(f)

        rounds = 50
        print(f"render 20 connectors into a runtime dir: {per_call(render, rounds) * 1e3:.2f} ms")
        print(f"resolve 20 connectors in memory:         {per_call(in_memory, rounds) * 1e3:.2f} ms")
        print(f"json.load/yaml.safe_load of the same:    {per_call(plain_load, rounds) * 1e3:.2f} ms")
        shutil.rmtree(tmp / "out", ignore_errors=True)
