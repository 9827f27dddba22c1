"""Key providers by spec: ``open(..., key_provider="command:...")``, ``key_cache_ttl_seconds``,
``forget_keys`` (the next use asks the program again) and ``rotate_key_provider``."""

import os
import stat

import pytest

import tbsecrets

TENANT = "tenant-a"


@pytest.fixture
def kms(tmp_path):
    """A toy key command that "wraps" by echoing its input line, counting its calls."""
    calls = tmp_path / "calls"
    script = tmp_path / "echo-kms"
    script.write_text(f"#!/bin/sh\necho x >> '{calls}'\nhead -n 1\n")
    script.chmod(stat.S_IRWXU)
    refusing = tmp_path / "refusing-kms"
    refusing.write_text("#!/bin/sh\necho 'kms: denied' >&2\nexit 1\n")
    refusing.chmod(stat.S_IRWXU)

    class Kms:
        spec = f"command:{script}"
        refusing_spec = f"command:{refusing}"

        @staticmethod
        def calls():
            return len(calls.read_text().splitlines()) if calls.exists() else 0

    return Kms


def test_a_store_on_a_key_command_opens_reopens_and_forgets_keys(tmp_path, kms):
    path = str(tmp_path / "kp.db")
    store = tbsecrets.SecretStorage.open(path, key_provider=kms.spec, audit=False)
    store.create(TENANT, "api", "TEXT", b"s3cr3t")
    store.close()
    store = tbsecrets.SecretStorage.open(
        path, key_provider=kms.spec, key_cache_ttl_seconds=3600, audit=False
    )
    assert store.get_text(TENANT, "api") == "s3cr3t"
    before = kms.calls()
    assert store.get_text(TENANT, "api") == "s3cr3t"
    assert kms.calls() == before, "the unwrapped key is cached"
    store.forget_keys()
    assert store.get_text(TENANT, "api") == "s3cr3t"
    assert kms.calls() > before, "asked the program again"
    store.close()

    with pytest.raises(tbsecrets.KeyUnavailable) as err:
        tbsecrets.SecretStorage.open(path, key_provider=kms.refusing_spec, audit=False)
    assert "exit status 1): kms: denied" in err.value.message
    with pytest.raises(tbsecrets.InvalidArgument, match="unknown key provider 'kms'"):
        tbsecrets.SecretStorage.open(path, key_provider="kms:x", audit=False)
    with pytest.raises(tbsecrets.InvalidArgument, match="give one of"):
        tbsecrets.SecretStorage.open(
            path,
            key_provider=kms.spec,
            master_key=tbsecrets.SecretStorage.generate_master_key(),
            audit=False,
        )
    with pytest.raises(tbsecrets.InvalidArgument, match="key_cache_ttl_seconds"):
        tbsecrets.SecretStorage.open(
            path, key_provider=kms.spec, key_cache_ttl_seconds=0, audit=False
        )


def test_the_environment_names_the_provider(tmp_path, kms, monkeypatch):
    path = str(tmp_path / "env.db")
    monkeypatch.delenv("TBS_MASTER_KEY", raising=False)
    monkeypatch.delenv("TBS_MASTER_KEY_FILE", raising=False)
    monkeypatch.setenv("TBS_KEY_PROVIDER", kms.spec)
    store = tbsecrets.SecretStorage.open(path, audit=False)
    store.create(TENANT, "api", "TEXT", b"env")
    store.close()
    monkeypatch.delenv("TBS_KEY_PROVIDER")
    with pytest.raises(tbsecrets.WrongMasterKey):
        tbsecrets.SecretStorage.open(
            path, master_key=tbsecrets.SecretStorage.generate_master_key(), audit=False
        )
    store = tbsecrets.SecretStorage.open(path, key_provider=kms.spec, audit=False)
    assert store.get_text(TENANT, "api") == "env"
    store.close()


def test_rotate_key_provider_moves_a_raw_store_to_a_key_command(tmp_path, kms):
    path = str(tmp_path / "raw.db")
    key = tbsecrets.SecretStorage.generate_master_key()
    store = tbsecrets.SecretStorage.open(path, master_key=key, audit=False)
    store.create(TENANT, "api", "TEXT", b"raw")
    with pytest.raises(tbsecrets.InvalidArgument):
        store.rotate_key_provider("command:")
    report = store.rotate_key_provider(kms.spec)
    assert (report.keys, report.key_id) == (1, 2)
    store.close()
    with pytest.raises(tbsecrets.WrongMasterKey):
        tbsecrets.SecretStorage.open(path, master_key=key, audit=False)
    store = tbsecrets.SecretStorage.open(path, key_provider=kms.spec, audit=False)
    assert store.get_text(TENANT, "api") == "raw"
    store.close()
