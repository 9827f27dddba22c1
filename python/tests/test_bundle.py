"""Export bundles, imports and manifests from Python."""

import pytest

import tbsecrets
from conftest import TENANT

# A test-only age key pair (age-keygen).
IDENTITY = "AGE-SECRET-KEY-1KZYSREY325WLLZQLTD7C8H76KZDP7UZAPCXU6NSEFNPLC9WVSCWQTXQ0KY\n"
RECIPIENT = "age1hue872wg5sr4xjy7j8qtm4ds8s2ux9mlpe06t5fyumfhyxz53efsjcs5eq"


def test_export_import_between_stores(tmp_path, store):
    store.create(TENANT, "db", "TEXT", b"py-bundle-value", "the db")
    bundle = store.export_bundle(TENANT, RECIPIENT)
    assert isinstance(bundle, bytes) and b"py-bundle-value" not in bundle
    other = tbsecrets.SecretStorage.open(
        str(tmp_path / "other.db"), master_key=tbsecrets.SecretStorage.generate_master_key())
    try:
        with pytest.raises(tbsecrets.Integrity):
            other.import_bundle(TENANT, bundle, IDENTITY)
        key = store.export_key()
        assert key.startswith("ed25519:")
        dry = other.import_bundle(TENANT, bundle, IDENTITY, dry_run=True, trust=key)
        assert dry["dry_run"] and dry["items"][0]["action"] == "create"
        with pytest.raises(tbsecrets.NotFound):
            other.get(TENANT, "db")
        report = other.import_bundle(TENANT, bundle, IDENTITY, trust=key)
        assert report["items"][0]["version"] == 1
        assert other.get(TENANT, "db") == b"py-bundle-value"
        with pytest.raises(tbsecrets.AlreadyExists):
            other.import_bundle(TENANT, bundle, IDENTITY, trust=key)
        again = other.import_bundle(TENANT, bundle, IDENTITY, on_conflict="overwrite", trust=key)
        assert again["items"][0]["action"] == "overwrite"
        with pytest.raises(tbsecrets.InvalidArgument):
            other.import_bundle(TENANT, bundle, IDENTITY, on_conflict="merge", trust=key)
    finally:
        other.close()


def test_manifest_reports_every_missing_secret(store):
    store.create(TENANT, "db", "TEXT", b"x")
    m = store.manifest(TENANT, [("a.json", '{"p": "${secret:db;type:TEXT}"}'),
                                ("b.txt", "${secret:smtp} ${secret:ca;type:TEXT_FILE}")])
    status = {e["name"]: e["status"] for e in m["secrets"]}
    assert status == {"ca": "MISSING", "db": "PRESENT", "smtp": "MISSING"}
