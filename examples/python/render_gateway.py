"""Render a ThingsBoard IoT Gateway config directory with tbsecrets.gateway.

Builds a small gateway config (tb_gateway.json + an MQTT connector with placeholders), stores
the secrets, renders into a runtime directory and prints what the gateway will read.
Run: python examples/python/render_gateway.py
"""

import json
import os
import tempfile
from pathlib import Path

from tbsecrets import SecretStorage, gateway

TENANT = "gateway"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"

with tempfile.TemporaryDirectory() as tmp:
    config = Path(tmp) / "config"
    config.mkdir()
    (config / "tb_gateway.json").write_text(json.dumps({
        "thingsboard": {"host": "tb.example.com", "port": 8883, "security": {
            "type": "tlsAccessToken", "accessToken": "${secret:gw-token}",
            "caCert": "${secret:tb-ca;type:TEXT_FILE}"}},
        "connectors": [{"type": "mqtt", "name": "MQTT Broker Connector", "configuration": "mqtt.json"}],
    }, indent=2))
    (config / "mqtt.json").write_text(json.dumps({
        "broker": {"host": "broker.local", "port": 1883, "security": {
            "type": "basic", "username": "${secret:mqtt-user}", "password": "${secret:mqtt-pass}"}},
    }, indent=2))

    with SecretStorage.open(str(Path(tmp) / "gw.db"), master_key=SecretStorage.generate_master_key()) as store:
        store.create(TENANT, "gw-token", "TEXT", b"A1_TEST_TOKEN")
        store.create(TENANT, "tb-ca", "TEXT_FILE", PEM.encode())
        store.create(TENANT, "mqtt-user", "TEXT", b"gateway")
        store.create(TENANT, "mqtt-pass", "TEXT", b"p@ss: #1 'q'")
        print("references:", {f: [r.name for r in refs] for f, refs in gateway.references(config).items()})
        out = Path(tmp) / "run" / "config"
        files = gateway.render(store, config, out, TENANT)

    print("rendered:", files, "mode", oct(os.stat(out).st_mode & 0o777))
    main = json.loads((out / "tb_gateway.json").read_text())
    ca = main["thingsboard"]["security"]["caCert"]
    print("caCert is a file:", ca, oct(os.stat(ca).st_mode & 0o777))
    print("mqtt password resolved:", json.loads((out / "mqtt.json").read_text())["broker"]["security"]["password"] == "p@ss: #1 'q'")
