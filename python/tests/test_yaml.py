"""Hostile values round-trip exactly through YAML (read back with PyYAML, as the gateway does)."""

import pytest

from conftest import TENANT

yaml = pytest.importorskip("yaml")

HOSTILE = [
    "a: b", "# not a comment", "x #y", "\"double\" and 'single'", "'", '"', "*alias", "&anchor",
    "!tag", "- item", "? key", "%TAG", "@at", "`tick", "|", ">", "yes", "no", "on", "off", "null",
    "~", "", "true", "1883", "0x1F", "1e3", "012", "  leading and trailing  ", "\ttab",
    "line one\nline two", "trailing\n\n", "crlf\r\nline", "back\\slash \\n", "{flow: [map]}",
    "unicode \u00e9 \u6f22\u5b57 \U0001f511", "nel\x85ls\u2028bom\ufeffbell\x07",
    "-----BEGIN CERTIFICATE-----\nMIIB: #x\n-----END CERTIFICATE-----\n", "${secret:other}",
]

SHAPES = [
    "k: ${secret:v}\n",
    "k: ${secret:v}  # comment\n",
    "k: \"x ${secret:v}\"\n",
    "k: 'x ${secret:v}'\n",
    "- ${secret:v}\n",
    "top:\n  - name: n\n    pass: ${secret:v}\n  - 2\n",
    "k: [\"${secret:v}\"]\n",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_hostile_values_round_trip(store, shape):
    for i, value in enumerate(HOSTILE):
        name = f"v{i}"
        store.create(TENANT, name, "TEXT", value.encode())
        doc = shape.replace("${secret:v}", "${secret:%s}" % name)
        out = store.resolve_yaml(TENANT, doc)
        expected = yaml.safe_load(shape.replace("${secret:v}", "MARKER"))
        got = yaml.safe_load(out)

        def fill(node):
            if isinstance(node, str):
                return node.replace("MARKER", value)
            if isinstance(node, list):
                return [fill(x) for x in node]
            if isinstance(node, dict):
                return {k: fill(v) for k, v in node.items()}
            return node

        assert got == fill(expected), (shape, value, out)
        store.delete(TENANT, name)
