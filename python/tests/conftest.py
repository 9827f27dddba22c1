"""Shared fixtures: a fresh store (with its key and audit log) in a temporary directory."""

import os

import pytest

import tbsecrets

TENANT = "13814000-1dd2-11b2-8080-808080808080"
OTHER_TENANT = "b7a61d10-0000-11b2-8080-808080808080"


class StoreFixture:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.path = str(tmp_path / "secrets.db")
        self.key = tbsecrets.SecretStorage.generate_master_key()
        self.audit_log = str(tmp_path / "audit.jsonl")
        self.store = tbsecrets.SecretStorage.open(self.path, master_key=self.key, audit_log=self.audit_log)

    def reopen(self, **kwargs):
        kwargs.setdefault("master_key", self.key)
        kwargs.setdefault("audit_log", self.audit_log)
        return tbsecrets.SecretStorage.open(self.path, **kwargs)


@pytest.fixture
def fx(tmp_path):
    f = StoreFixture(tmp_path)
    yield f
    f.store.close()


@pytest.fixture
def store(fx):
    return fx.store


@pytest.fixture
def key_file(tmp_path, fx):
    import base64

    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(fx.key).decode() + "\n")
    return str(path)
