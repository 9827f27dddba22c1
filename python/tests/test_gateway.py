"""tbsecrets.gateway against the real ThingsBoard IoT Gateway's shipped configuration files:
credentials replaced by placeholders, resolved, and loaded with the gateway's own code."""

import copy
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import tbsecrets
from tbsecrets import gateway
from conftest import TENANT

yaml = pytest.importorskip("yaml")
tb_gateway = pytest.importorskip("thingsboard_gateway")

SAMPLES = Path(tb_gateway.__file__).parent / "config"
CREDENTIAL_KEYS = {"password", "username", "accessToken", "token", "caCert", "privateKey", "cert"}
#: Connector samples the package ships, with the connector type the main file names them by.
CONNECTORS = {
    "mqtt.json": "mqtt", "modbus.json": "modbus", "opcua.json": "opcua", "rest.json": "rest",
    "request.json": "request", "ftp.json": "ftp", "ocpp.json": "ocpp", "xmpp.json": "xmpp",
    "snmp.json": "snmp", "socket.json": "socket", "can.json": "can", "bacnet.json": "bacnet",
}
HOSTILE = "p@ss: #1 'q' \"d\" \\ *x &y !z"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def load_general_config(path):
    """The gateway's own loader of tb_gateway.json / tb_gateway.yaml."""
    import logging

    from thingsboard_gateway.gateway import tb_gateway_service
    from thingsboard_gateway.gateway.tb_gateway_service import TBGatewayService

    # The gateway sets its module logger when it starts; the loader logs the YAML fallback.
    if tb_gateway_service.log is None:
        tb_gateway_service.log = logging.getLogger("tb_gateway_service")
    return TBGatewayService._TBGatewayService__load_general_config(str(path))


def load_connector(path):
    """As the gateway reads a connector file (tb_gateway_service: simplejson.loads)."""
    from thingsboard_gateway.gateway import tb_gateway_service

    with open(path, encoding="utf-8") as f:
        return tb_gateway_service.loads(f.read())


def with_placeholders(node, prefix, secrets):
    """Replaces every credential value with a placeholder; records name -> expected value.
    Every other value is kept."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in CREDENTIAL_KEYS and isinstance(v, str) and not v.startswith("${secret:"):
                name = f"{prefix}-{k}-{len(secrets)}"
                value = HOSTILE + str(len(secrets)) if k == "password" else v
                secrets[name] = value
                out[k] = "${secret:%s}" % name
            else:
                out[k] = with_placeholders(v, prefix, secrets)
        return out
    if isinstance(node, list):
        return [with_placeholders(x, prefix, secrets) for x in node]
    return node


def fill(node, secrets, mapping):
    """The expected resolved form of a placeholdered node."""
    if isinstance(node, str) and node.startswith("${secret:"):
        name = node[len("${secret:"):-1].split(";")[0]
        return mapping(name, secrets[name])
    if isinstance(node, dict):
        return {k: fill(v, secrets, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(x, secrets, mapping) for x in node]
    return node


def make_config_dir(tmp_path, store, main_format="json", count=None):
    """A gateway config dir from the shipped samples; returns (dir, placeholdered docs, secrets)."""
    src = tmp_path / "config"
    src.mkdir()
    main = json.loads((SAMPLES / "tb_gateway.json").read_text())
    main["thingsboard"]["security"] = {
        "type": "tlsAccessToken",
        "accessToken": "YOUR_ACCESS_TOKEN",
        "caCert": "${secret:tb-ca;type:TEXT_FILE}",
    }
    secrets = {}
    docs = {}
    connectors = []
    names = list(CONNECTORS)
    if count is not None:
        names = [names[i % len(names)] for i in range(count)]
    for i, file in enumerate(names):
        data = json.loads((SAMPLES / file).read_text())
        if file == "mqtt.json":
            data["broker"]["security"] = {"type": "basic", "username": "gateway", "password": "secret"}
        target = file if count is None else f"c{i:02d}_{file}"
        placeholdered = with_placeholders(data, Path(target).stem, secrets)
        (src / target).write_text(json.dumps(placeholdered, indent=2))
        docs[target] = placeholdered
        connectors.append({"type": CONNECTORS[file], "name": f"{file} connector {i}", "configuration": target})
    main["connectors"] = connectors
    main_doc = with_placeholders(main, "tb", secrets)
    secrets["tb-ca"] = PEM
    for extra in ("logs.json", "list.json"):
        (src / extra).write_text((SAMPLES / extra).read_text())
    if main_format == "json":
        (src / "tb_gateway.json").write_text(json.dumps(main_doc, indent=2))
        docs["tb_gateway.json"] = main_doc
    else:
        (src / "tb_gateway.yaml").write_text(yaml.safe_dump(main_doc, sort_keys=False))
        docs["tb_gateway.yaml"] = main_doc
    for name, value in secrets.items():
        kind = "TEXT_FILE" if name == "tb-ca" else "TEXT"
        store.create(TENANT, name, kind, value.encode())
    return src, docs, secrets


def test_render_json_config_dir_and_load_it_with_the_gateway(tmp_path, store):
    src, docs, secrets = make_config_dir(tmp_path, store)
    out = tmp_path / "run" / "gateway"
    files = gateway.render(store, src, out, TENANT)
    assert files[0] == "tb_gateway.json" and len(files) == 1 + len(CONNECTORS)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    general = load_general_config(out / "tb_gateway.json")
    ca_path = general["thingsboard"]["security"]["caCert"]
    assert ca_path == str(out / ".secrets" / Path(ca_path).name)
    assert Path(ca_path).read_text() == PEM
    assert stat.S_IMODE(os.stat(ca_path).st_mode) == 0o600
    expected_main = fill(docs["tb_gateway.json"], secrets, lambda n, v: ca_path if n == "tb-ca" else v)
    assert general == expected_main
    for connector in general["connectors"]:
        rel = connector["configuration"]
        loaded = load_connector(out / rel)
        assert loaded == fill(docs[rel], secrets, lambda n, v: v), rel
        assert stat.S_IMODE(os.stat(out / rel).st_mode) == 0o600
    mqtt = load_connector(out / "mqtt.json")
    assert mqtt["broker"]["security"]["password"].startswith(HOSTILE)
    # Files the gateway also reads are copied.
    assert json.loads((out / "logs.json").read_text()) == json.loads((SAMPLES / "logs.json").read_text())
    # Render again over the earlier render: replaced whole.
    store.update_value(TENANT, "tb-ca", PEM.replace("MIIB", "NEW1"))
    gateway.render(store, src, out, TENANT)
    general = load_general_config(out / "tb_gateway.json")
    assert "NEW1" in Path(general["thingsboard"]["security"]["caCert"]).read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["gateway"]


def test_yaml_main_file_is_loaded_by_the_gateway(tmp_path, store):
    src, docs, secrets = make_config_dir(tmp_path, store, main_format="yaml")
    resolved = gateway.resolve_config_dir(store, src, TENANT)
    assert list(resolved)[0] == "tb_gateway.yaml"
    out = tmp_path / "out"
    gateway.render(store, src, out, TENANT)
    # The gateway falls back to tb_gateway.yaml when tb_gateway.json is absent.
    general = load_general_config(out / "tb_gateway.json")
    ca_path = general["thingsboard"]["security"]["caCert"]
    assert general == fill(docs["tb_gateway.yaml"], secrets, lambda n, v: ca_path if n == "tb-ca" else v)
    # In memory the PEM itself is substituted, as a YAML block scalar.
    in_memory = yaml.safe_load(resolved["tb_gateway.yaml"])
    assert in_memory["thingsboard"]["security"]["caCert"] == PEM
    assert "caCert: |\n" in resolved["tb_gateway.yaml"]


def test_every_missing_secret_in_every_file_is_named_and_nothing_is_written(tmp_path, store):
    src, docs, secrets = make_config_dir(tmp_path, store)
    store.delete(TENANT, "tb-ca")
    missing_mqtt = next(n for n in secrets if n.startswith("mqtt-password"))
    store.delete(TENANT, missing_mqtt)
    out = tmp_path / "out"
    out.mkdir()
    (out / tbsecrets.gateway.MARKER).write_text("")
    (out / "tb_gateway.json").write_text("previous")
    with pytest.raises(tbsecrets.SecretStorageError) as e:
        gateway.render(store, src, out, TENANT)
    assert e.value.code == "UNRESOLVED"
    assert {p.name for p in e.value.problems} == {"tb-ca", missing_mqtt}
    assert set(e.value.files) == {"tb_gateway.json", "mqtt.json"}
    assert "tb_gateway.json: NOT_FOUND 'tb-ca'" in str(e.value)
    assert HOSTILE not in str(e.value)
    # The earlier render is untouched and no temporary directory is left.
    assert (out / "tb_gateway.json").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if ".render-" in p.name or ".old-" in p.name] == []
    with pytest.raises(tbsecrets.Unresolved):
        gateway.resolve_config_dir(store, src, TENANT)


def test_refuses_to_replace_a_foreign_directory_and_bad_connector_paths(tmp_path, store):
    src, _, _ = make_config_dir(tmp_path, store)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "important.txt").write_text("keep")
    with pytest.raises(tbsecrets.InvalidArgument):
        gateway.render(store, src, foreign, TENANT)
    assert (foreign / "important.txt").read_text() == "keep"
    main = json.loads((src / "tb_gateway.json").read_text())
    main["connectors"].append({"type": "mqtt", "name": "evil", "configuration": "../secrets.db"})
    (src / "tb_gateway.json").write_text(json.dumps(main))
    with pytest.raises(tbsecrets.InvalidArgument):
        gateway.config_files(src)


def test_command_line_render_and_refs(tmp_path, fx, key_file):
    src, _, _ = make_config_dir(tmp_path, fx.store)
    fx.store.close()
    out = tmp_path / "rendered"
    env = dict(os.environ, TBS_STORE="", TBS_TENANT="")
    cmd = [sys.executable, "-m", "tbsecrets.gateway", "render", str(src), str(out),
           "--store", fx.path, "--master-key-file", key_file, "--tenant", TENANT]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rendered {1 + len(CONNECTORS)} file(s)")
    assert load_connector(out / "mqtt.json")["broker"]["security"]["password"].startswith(HOSTILE)
    refs = subprocess.run([sys.executable, "-m", "tbsecrets.gateway", "refs", str(src)],
                          capture_output=True, text=True)
    assert refs.returncode == 0
    assert "tb_gateway.json\ttb-ca;type:TEXT_FILE" in refs.stdout
    bad = subprocess.run(cmd[:-1] + ["other-tenant"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr
