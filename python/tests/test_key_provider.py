"""Host key providers: an object with wrap/unwrap holding the master key (open, reopen, a
provider that raises -> KeyUnavailable chained to its exception, another provider ->
WrongMasterKey, rotation raw -> provider -> raw)."""

import hashlib
import hmac
import os
import threading

import pytest

import tbsecrets
from tbsecrets import SecretStorage
from conftest import TENANT

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - the test venv normally has cryptography
    AESGCM = None


class KmsDown(Exception):
    """What a KMS client raises when the service cannot be reached."""


class AesGcmKms:
    """A stand-in for a KMS client: AES-256-GCM under a key only this object holds, binding
    the context (`aad`) the store passes. Without the `cryptography` package, a TEST DOUBLE
    (hashlib keystream + HMAC tag, NOT a vetted cipher) with the same contract."""

    description = "test-kms"

    def __init__(self):
        self.key = os.urandom(32)
        self.down = False
        self.calls = 0
        self.threads = set()

    def _check(self):
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.down:
            raise KmsDown("kms.example is unreachable")

    def wrap(self, aad, plaintext):
        self._check()
        assert isinstance(aad, bytes) and isinstance(plaintext, bytes)
        nonce = os.urandom(12)
        if AESGCM is not None:
            return nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)
        stream = hashlib.shake_256(self.key + nonce).digest(len(plaintext))
        body = bytes(a ^ b for a, b in zip(plaintext, stream))
        return nonce + body + hmac.new(self.key, aad + nonce + body, "sha256").digest()

    def unwrap(self, aad, wrapped):
        self._check()
        nonce, body = wrapped[:12], wrapped[12:]
        if AESGCM is not None:
            try:
                return AESGCM(self.key).decrypt(nonce, body, aad)
            except InvalidTag:
                # Not this key's ciphertext: tell the store (WrongMasterKey on open).
                raise tbsecrets.Integrity("not wrapped by this KMS key") from None
        body, tag = body[:-32], body[-32:]
        if not hmac.compare_digest(tag, hmac.new(self.key, aad + nonce + body, "sha256").digest()):
            raise tbsecrets.Integrity("not wrapped by this KMS key")
        stream = hashlib.shake_256(self.key + nonce).digest(len(body))
        return bytes(a ^ b for a, b in zip(body, stream))


def test_open_reopen_and_wrong_provider(tmp_path):
    path = str(tmp_path / "kms.db")
    kms = AesGcmKms()
    with SecretStorage.open(path, key_provider=kms) as store:
        store.create(TENANT, "pw", "TEXT", b"s3cr3t")
        assert store.get(TENANT, "pw") == b"s3cr3t"
    assert kms.calls >= 2  # the key check value and the tenant's data key
    calls = kms.calls
    with SecretStorage.open(path, key_provider=kms) as store:
        assert store.get_text(TENANT, "pw") == "s3cr3t"
    assert kms.calls > calls
    # Another KMS key cannot open the store (its unwrap raises Integrity: the key check fails).
    with pytest.raises(tbsecrets.WrongMasterKey):
        SecretStorage.open(path, key_provider=AesGcmKms())
    with pytest.raises(tbsecrets.WrongMasterKey):
        SecretStorage.open(path, master_key=SecretStorage.generate_master_key())


def test_a_raising_provider_is_key_unavailable_chained(tmp_path):
    path = str(tmp_path / "kms.db")
    kms = AesGcmKms()
    store = SecretStorage.open(path, key_provider=kms)
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    kms.down = True
    # A new tenant needs a new data key: the provider is called and raises.
    with pytest.raises(tbsecrets.KeyUnavailable) as raised:
        store.create("other-tenant", "pw", "TEXT", b"v")
    assert isinstance(raised.value.__cause__, KmsDown)
    assert "unreachable" in raised.value.message and "test-kms" in raised.value.message
    assert raised.value.code == "KEY_UNAVAILABLE"
    kms.down = False
    with pytest.raises(tbsecrets.NotFound):
        store.get("other-tenant", "pw")  # nothing was written
    store.close()
    kms.down = True
    with pytest.raises(tbsecrets.KeyUnavailable) as raised:
        SecretStorage.open(path, key_provider=kms)
    assert isinstance(raised.value.__cause__, KmsDown)
    # The cause does not leak into a later, unrelated error.
    kms.down = False
    with SecretStorage.open(path, key_provider=kms) as store:
        with pytest.raises(tbsecrets.NotFound) as missing:
            store.get(TENANT, "missing")
        assert missing.value.__cause__ is None


def test_a_provider_returning_no_bytes_is_key_unavailable(tmp_path):
    class ReturnsText(AesGcmKms):
        def wrap(self, aad, plaintext):
            return "not bytes"

    with pytest.raises(tbsecrets.KeyUnavailable) as raised:
        SecretStorage.open(str(tmp_path / "x.db"), key_provider=ReturnsText())
    assert raised.value.__cause__ is not None


def test_invalid_providers_and_arguments(tmp_path):
    path = str(tmp_path / "x.db")
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(path, key_provider=object())
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(path, key_provider=AesGcmKms(), master_key=SecretStorage.generate_master_key())
    assert not os.path.exists(path)


def test_rotation_raw_to_provider_to_raw(fx, store):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    kms = AesGcmKms()
    kms.down = True
    with pytest.raises(tbsecrets.KeyUnavailable):
        store.rotate_key_provider(kms)
    assert store.get(TENANT, "pw") == b"s3cr3t"
    kms.down = False
    report = store.rotate_key_provider(kms)
    assert report.keys == 1
    assert store.get(TENANT, "pw") == b"s3cr3t"
    store.close()
    with pytest.raises(tbsecrets.WrongMasterKey):
        fx.reopen()
    new_key = SecretStorage.generate_master_key()
    with SecretStorage.open(fx.path, key_provider=kms, audit_log=fx.audit_log) as s:
        assert s.get(TENANT, "pw") == b"s3cr3t"
        assert s.rotate_master_key(new_key).keys == 1
    with pytest.raises(tbsecrets.WrongMasterKey):
        SecretStorage.open(fx.path, key_provider=kms, audit_log=fx.audit_log)
    with SecretStorage.open(fx.path, master_key=new_key, audit_log=fx.audit_log) as s:
        assert s.get_text(TENANT, "pw") == "s3cr3t"


def test_called_from_other_python_threads(tmp_path):
    kms = AesGcmKms()
    path = str(tmp_path / "kms.db")
    with SecretStorage.open(path, key_provider=kms) as store:
        errors = []

        def work(i):
            try:
                store.create(f"tenant-{i}", "pw", "TEXT", f"v{i}".encode())
                assert store.get(f"tenant-{i}", "pw") == f"v{i}".encode()
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    assert len(kms.threads) >= 2  # called from the threads using the store, GIL taken
