"""The examples in examples/python/ run and print what they promise."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def run(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_store_basics():
    out = run("store_basics.py")
    assert "JSON ca is the PEM: True" in out
    assert "admin refused: PERMISSION_DENIED" in out
    assert "missing: [('nope', 3), ('gone', 21)]" in out
    assert "caCert: |\n" in out
    assert 'password: "<mqtt-pass>"' in out
    assert "rotated" not in out and "p@ss" not in out


def test_render_gateway():
    out = run("render_gateway.py")
    assert "rendered: ['tb_gateway.json', 'mqtt.json'] mode 0o700" in out
    assert "mqtt password resolved: True" in out
    assert "0o600" in out
