"""tbsecrets from Python: create, read, resolve JSON/YAML, sessions, errors.

Run: python examples/python/store_basics.py   (after `pip install` of the wheel)
"""

import json
import tempfile
from pathlib import Path

import tbsecrets
from tbsecrets import Principal, Role, SecretStorage

TENANT = "13814000-1dd2-11b2-8080-808080808080"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"

with tempfile.TemporaryDirectory() as tmp:
    key = SecretStorage.generate_master_key()  # in production: master_key_file=...
    with SecretStorage.open(str(Path(tmp) / "gw.db"), master_key=key) as store:
        store.create(TENANT, "mqtt-pass", "TEXT", b"p@ss: #1", "broker password")
        store.create(TENANT, "broker-ca", "TEXT_FILE", PEM.encode())
        print("version:", store.update_value(TENANT, "mqtt-pass", b"rotated: 'x'").version)

        connector = '{"broker": {"password": "${secret:mqtt-pass}", "ca": "${secret:broker-ca}"}}'
        resolved = json.loads(store.resolve_json(TENANT, connector))
        print("JSON ca is the PEM:", resolved["broker"]["ca"] == PEM)

        main = "thingsboard:\n  security:\n    password: ${secret:mqtt-pass}\n    caCert: ${secret:broker-ca}\n"
        resolved_yaml = store.resolve_yaml(TENANT, main)
        # Shown with the values masked: the password quoted by YAML's rules, the PEM as a block.
        print(resolved_yaml.replace("rotated: 'x'", "<mqtt-pass>").replace(PEM.splitlines()[1], "<base64>"))

        with store.session(Principal(TENANT, Role.TENANT_ADMIN)) as admin:
            try:
                admin.get(TENANT, "mqtt-pass")
            except tbsecrets.PermissionDenied as e:
                print("admin refused:", e.code)
        try:
            store.resolve_yaml(TENANT, "a: ${secret:nope}\nb: ${secret:gone}\n")
        except tbsecrets.Unresolved as e:
            print("missing:", [(p.name, p.offset) for p in e.problems])
