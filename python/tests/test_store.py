"""Every operation of SecretStorage and Session, and every error class, from Python."""

import base64
import json

import pytest

import tbsecrets
from tbsecrets import Principal, Role, SecretStorage
from conftest import OTHER_TENANT, TENANT

PEM = "-----BEGIN CERTIFICATE-----\nMIIB: #x 'q' \"d\"\n-----END CERTIFICATE-----\n"


def test_create_get_info_list_history_update_rollback_delete(store):
    info = store.create(TENANT, "mqtt-pass", "TEXT", b"s3cr3t", "broker password")
    assert (info.name, info.secret_type, info.version, info.description) == (
        "mqtt-pass", "TEXT", 1, "broker password")
    assert store.get(TENANT, "mqtt-pass") == b"s3cr3t"
    assert isinstance(store.get(TENANT, "mqtt-pass"), bytes)
    assert store.get_text(TENANT, "mqtt-pass") == "s3cr3t"
    assert store.update_value(TENANT, "mqtt-pass", "n\u00e9w").version == 2
    assert store.get_text(TENANT, "mqtt-pass") == "n\u00e9w"
    assert store.update_value(TENANT, "mqtt-pass", bytearray(b"third"), expected_version=2).version == 3
    assert store.update_description(TENANT, "mqtt-pass", "rotated").description == "rotated"
    assert [v.version for v in store.history(TENANT, "mqtt-pass")] == [3, 2, 1]
    assert [v.current for v in store.history(TENANT, "mqtt-pass")] == [True, False, False]
    assert store.rollback(TENANT, "mqtt-pass", 1).version >= 1
    assert store.get(TENANT, "mqtt-pass") == b"s3cr3t"
    store.create(TENANT, "ca", tbsecrets.TEXT_FILE, PEM.encode())
    page = store.list(TENANT)
    assert [i.name for i in page.items] == ["ca", "mqtt-pass"]
    assert (page.total, page.has_more) == (2, False)
    assert [i.name for i in store.list(TENANT, name_contains="mqtt").items] == ["mqtt-pass"]
    assert store.list(TENANT, limit=1).has_more
    first = store.list(TENANT, limit=1)
    assert ([i.name for i in first.items], first.next_after) == (["ca"], "ca")
    last = store.list(TENANT, limit=1, after=first.next_after)
    assert ([i.name for i in last.items], last.has_more, last.next_after) == (["mqtt-pass"], False, None)
    assert store.info(TENANT, "ca").secret_type == "TEXT_FILE"
    assert store.info(TENANT, "mqtt-pass").use_count >= 1
    store.delete(TENANT, "mqtt-pass")
    with pytest.raises(tbsecrets.NotFound) as e:
        store.get(TENANT, "mqtt-pass")
    assert e.value.code == "NOT_FOUND" and e.value.code_number == 2
    assert "mqtt-pass" in str(e.value)


def test_undelete_list_deleted_and_destroy(store):
    store.create(TENANT, "db", "TEXT", b"v1")
    store.update_value(TENANT, "db", b"v2")
    store.create(TENANT, "keep", "TEXT", b"k")
    store.delete(TENANT, "db")
    with pytest.raises(tbsecrets.NotFound):
        store.get(TENANT, "db")
    assert [i.name for i in store.list(TENANT).items] == ["keep"]
    deleted = store.list(TENANT, deleted=True).items
    assert [i.name for i in deleted] == ["db"]
    assert deleted[0].deleted_at is not None
    assert store.info(TENANT, "keep").deleted_at is None
    with pytest.raises(tbsecrets.AlreadyExists) as e:
        store.create(TENANT, "db", "TEXT", b"x")
    assert "undelete" in str(e.value)
    store.undelete(TENANT, "db")
    assert store.get(TENANT, "db") == b"v2"
    assert len(store.history(TENANT, "db")) == 2
    with pytest.raises(tbsecrets.NotFound):
        store.undelete(TENANT, "db")
    store.destroy(TENANT, "db")
    with pytest.raises(tbsecrets.NotFound):
        store.undelete(TENANT, "db")
    assert store.list(TENANT, deleted=True).items == []
    assert store.create(TENANT, "db", "TEXT", b"fresh").version == 1


def test_a_zero_retention_erases_on_delete(tmp_path):
    key = SecretStorage.generate_master_key()
    store = SecretStorage.open(tmp_path / "zero.db", master_key=key, deleted_retention_days=0)
    store.create(TENANT, "a", "TEXT", b"v")
    store.delete(TENANT, "a")
    assert store.list(TENANT, deleted=True).items == []
    with pytest.raises(tbsecrets.NotFound):
        store.undelete(TENANT, "a")
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(tmp_path / "x.db", master_key=key, deleted_retention_days=-1)


def test_resolve_text_json_yaml(store):
    store.create(TENANT, "pw", "TEXT", b'yes: "#1" \\ \'x\'')
    store.create(TENANT, "ca", "TEXT_FILE", PEM.encode())
    assert store.resolve_text(TENANT, "p=${secret:pw}") == 'p=yes: "#1" \\ \'x\''
    assert store.resolve_text(TENANT, "no placeholder ${x}") == "no placeholder ${x}"
    out = store.resolve_json(TENANT, '{"password": "${secret:pw}", "ca": "${secret:ca;type:TEXT_FILE}", "port": 1}')
    assert json.loads(out) == {"password": 'yes: "#1" \\ \'x\'', "ca": PEM, "port": 1}
    yaml = pytest.importorskip("yaml")
    doc = "broker:\n  password: ${secret:pw}\n  ca: ${secret:ca}\n  port: 8883\n"
    assert yaml.safe_load(store.resolve_yaml(TENANT, doc)) == {
        "broker": {"password": 'yes: "#1" \\ \'x\'', "ca": PEM, "port": 8883}}
    materialized = json.loads(store.resolve_json(TENANT, '{"ca": "${secret:ca}"}', materialize_files=True))
    with open(materialized["ca"]) as f:
        assert f.read() == PEM


def test_unresolved_names_every_problem_without_values(store):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    doc = '{"a": "${secret:gone}", "b": "${secret:pw;type:TEXT_FILE}", "c": "${secret:also-gone}"}'
    with pytest.raises(tbsecrets.SecretStorageError) as e:
        store.resolve_json(TENANT, doc)
    assert isinstance(e.value, tbsecrets.Unresolved) and e.value.code == "UNRESOLVED"
    assert [(p.code, p.name, p.offset) for p in e.value.problems] == [
        ("NOT_FOUND", "gone", doc.index("${secret:gone")),
        ("TYPE_MISMATCH", "pw", doc.index("${secret:pw")),
        ("NOT_FOUND", "also-gone", doc.index("${secret:also-gone")),
    ]
    assert "s3cr3t" not in str(e.value)
    with pytest.raises(tbsecrets.MalformedPlaceholder) as e:
        store.resolve_text(TENANT, "${secret:bad")
    assert e.value.problems[0].name == "bad"
    with pytest.raises(tbsecrets.TypeMismatch):
        store.resolve_text(TENANT, "${secret:pw;type:FILE}")
    with pytest.raises(tbsecrets.InvalidArgument) as e:
        store.resolve_yaml(TENANT, "a: [${secret:pw}")
    assert "not valid YAML" in e.value.message


def test_references_track_untrack_where_used_in_use(store):
    store.create(TENANT, "pw", "TEXT", b"x")
    refs = SecretStorage.references('{"u": "${secret:user}", "ca": "${secret:ca;type:FILE}"}')
    assert [(r.name, r.secret_type) for r in refs] == [("user", None), ("ca", "TEXT_FILE")]
    tracked = store.track_references(TENANT, "gateway/mqtt.json", "password: ${secret:pw}")
    assert [r.name for r in tracked] == ["pw"]
    used = store.where_used(TENANT, "pw")
    assert [(u.source_id, u.name) for u in used] == [("gateway/mqtt.json", "pw")]
    with pytest.raises(tbsecrets.InUse):
        store.delete(TENANT, "pw")
    assert store.untrack(TENANT, "gateway/mqtt.json") == 1
    assert store.where_used(TENANT, "pw") == []
    store.create(TENANT, "pw2", "TEXT", b"x")
    store.track_references(TENANT, "src", "${secret:pw2}")
    store.delete(TENANT, "pw2", force=True)


def test_errors_have_their_classes_and_codes(fx, store, tmp_path):
    store.create(TENANT, "a", "TEXT", b"x")
    cases = [
        (tbsecrets.AlreadyExists, lambda: store.create(TENANT, "a", "TEXT", b"y")),
        (tbsecrets.InvalidArgument, lambda: store.create(TENANT, "", "TEXT", b"y")),
        (tbsecrets.InvalidArgument, lambda: store.create(TENANT, "b", "NOPE", b"y")),
        (tbsecrets.InvalidArgument, lambda: store.create(TENANT, "b", "TEXT", 42)),
        (tbsecrets.NotFound, lambda: store.info(TENANT, "nope")),
        (tbsecrets.NotFound, lambda: store.rollback(TENANT, "a", 99)),
        (tbsecrets.Conflict, lambda: store.update_value(TENANT, "a", b"z", expected_version=7)),
        (tbsecrets.TypeMismatch, lambda: store.resolve_text(TENANT, "${secret:a;type:TEXT_FILE}")),
        (tbsecrets.Unresolved, lambda: store.resolve_text(TENANT, "${secret:zzz}")),
        (tbsecrets.MalformedPlaceholder, lambda: store.resolve_text(TENANT, "${secret:}")),
    ]
    for cls, call in cases:
        with pytest.raises(cls) as e:
            call()
        assert isinstance(e.value, tbsecrets.SecretStorageError)
        assert tbsecrets.ERRORS_BY_CODE[e.value.code] is cls, e.value.code
    with pytest.raises(tbsecrets.WrongMasterKey) as e:
        fx.reopen(master_key=SecretStorage.generate_master_key())
    assert e.value.code_number == 10
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(str(tmp_path / "x.db"), master_key=b"short")
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(str(tmp_path / "x.db"))
    with pytest.raises(tbsecrets.NotFound):
        SecretStorage.open(str(tmp_path / "absent.db"), master_key=fx.key, create_if_missing=False)
    with pytest.raises(tbsecrets.StorageError):
        SecretStorage.open(str(tmp_path / "no" / "such" / "dir" / "x.db"), master_key=fx.key)
    with pytest.raises(tbsecrets.InternalError) as e:
        tbsecrets._native._panic_for_test()
    assert e.value.code == "INTERNAL"
    store.close()
    assert store.closed
    with pytest.raises(tbsecrets.Closed):
        store.get(TENANT, "a")
    store.close()  # twice is fine


def test_every_error_code_has_a_class():
    codes = ["INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "TYPE_MISMATCH", "PERMISSION_DENIED",
             "IN_USE", "CONFLICT", "MALFORMED_PLACEHOLDER", "UNRESOLVED", "WRONG_MASTER_KEY", "INTEGRITY",
             "STORAGE", "CLOSED", "INTERNAL", "ROLLBACK_DETECTED", "KEY_UNAVAILABLE"]
    assert sorted(tbsecrets.ERRORS_BY_CODE) == sorted(codes)
    for cls in tbsecrets.ERRORS_BY_CODE.values():
        assert issubclass(cls, tbsecrets.SecretStorageError)
        assert cls.__module__ == "tbsecrets"


def test_integrity_and_rollback_detected(fx, store, tmp_path):
    import os
    import sqlite3

    def snapshot(src, dst):
        with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
            a.backup(b)
        a.close()
        b.close()

    store.create(TENANT, "a", "TEXT", b"value-one")
    store.close()
    backup = str(tmp_path / "backup.db")
    snapshot(fx.path, backup)
    with fx.reopen() as s:
        s.update_value(TENANT, "a", b"value-two")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(fx.path + suffix):
            os.remove(fx.path + suffix)
    snapshot(backup, fx.path)  # an older copy of the database put back
    with pytest.raises(tbsecrets.RollbackDetected) as e:
        fx.reopen()
    assert e.value.code == "ROLLBACK_DETECTED" and e.value.code_number == 15

    # A ciphertext changed in SQL fails authentication.
    tampered = str(tmp_path / "t.db")
    snapshot(backup, tampered)
    with sqlite3.connect(tampered) as con:
        con.execute("update tbs_secret_versions set value = zeroblob(length(value))")
    con.close()
    with pytest.raises(tbsecrets.Integrity) as e:
        with SecretStorage.open(tampered, master_key=fx.key, audit=False) as t:
            t.get(TENANT, "a")
    assert e.value.code == "INTEGRITY"


def test_sessions_principals_and_permissions(store):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    admin_principal = Principal(TENANT, Role.TENANT_ADMIN, id="alice")
    with store.session(admin_principal) as admin:
        assert admin.principal.role == Role.TENANT_ADMIN and admin.principal.id == "alice"
        admin.create(TENANT, "new", "TEXT", b"x")
        with pytest.raises(tbsecrets.PermissionDenied) as e:
            admin.get(TENANT, "pw")
        assert e.value.code == "PERMISSION_DENIED"
    with store.session(Principal(TENANT, Role.SERVICE)) as service:
        assert service.get(TENANT, "pw") == b"s3cr3t"
        assert service.resolve_yaml(TENANT, "p: ${secret:pw}\n") == 'p: "s3cr3t"\n'
        with pytest.raises(tbsecrets.PermissionDenied):
            service.get(OTHER_TENANT, "pw")
        with pytest.raises(tbsecrets.PermissionDenied):
            service.rotate_master_key(SecretStorage.generate_master_key())
    sysadmin = store.session(Principal(TENANT, Role.SYS_ADMIN))
    assert sysadmin.verify_audit_log().intact


def test_open_with_key_file_base64_and_rotation(fx, store, key_file):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    store.close()
    with SecretStorage.open(fx.path, master_key_file=key_file, audit_log=fx.audit_log) as s:
        assert s.get(TENANT, "pw") == b"s3cr3t"
    with SecretStorage.open(fx.path, master_key=base64.b64encode(fx.key).decode(), audit_log=fx.audit_log) as s:
        report = s.rotate_tenant_key(TENANT)
        assert report.versions == 1
        new_key = SecretStorage.generate_master_key()
        assert s.rotate_master_key(new_key).keys >= 1
        assert s.get(TENANT, "pw") == b"s3cr3t"
    with pytest.raises(tbsecrets.WrongMasterKey):
        fx.reopen()
    with SecretStorage.open(fx.path, master_key=new_key, audit_log=fx.audit_log) as s:
        assert s.get_text(TENANT, "pw") == "s3cr3t"
        verification = s.verify_audit_log()
        assert verification.intact and verification.records > 0 and verification.problem is None
    with pytest.raises(tbsecrets.InvalidArgument):
        SecretStorage.open(fx.path, master_key=new_key, master_key_file=key_file)


def test_rotation_dry_runs_change_nothing(fx, store):
    store.create(TENANT, "pw", "TEXT", b"s3cr3t")
    store.update_value(TENANT, "pw", b"again")
    tenant_plan = store.plan_tenant_key_rotation(TENANT)
    assert (tenant_plan.tenants, tenant_plan.keys, tenant_plan.secrets) == (1, 1, 1)
    assert (tenant_plan.versions, tenant_plan.key_id, tenant_plan.sampled) == (2, 2, 2)
    master_plan = store.plan_master_key_rotation()
    assert (master_plan.tenants, master_plan.keys, master_plan.key_id) == (1, 1, 2)
    assert master_plan.estimated_micros >= 0
    with pytest.raises(tbsecrets.NotFound):
        store.plan_tenant_key_rotation(OTHER_TENANT)
    with store.session(Principal(TENANT, Role.TENANT_ADMIN)) as admin:
        with pytest.raises(tbsecrets.PermissionDenied):
            admin.plan_master_key_rotation()
        assert admin.plan_tenant_key_rotation(TENANT).versions == 2
    # Nothing was rotated: the tenant's next key is still 2, the master key opens the store.
    assert store.rotate_tenant_key(TENANT).key_id == 2


def test_audit_log_tampering_is_found(fx, store):
    store.create(TENANT, "pw", "TEXT", b"x")
    store.close()
    with open(fx.audit_log) as f:
        lines = f.readlines()
    lines[0] = lines[0].replace(TENANT, OTHER_TENANT)
    with open(fx.audit_log, "w") as f:
        f.writelines(lines)
    with SecretStorage.open(fx.path, master_key=fx.key, audit=False) as s:
        report = s.verify_audit_log(fx.audit_log)
    assert not report.intact and report.problem_line == 1 and report.problem


def test_get_text_of_binary_value_is_invalid_argument(store):
    store.create(TENANT, "bin", "TEXT_FILE", b"\xff\xfe")
    assert store.get(TENANT, "bin") == b"\xff\xfe"
    with pytest.raises(tbsecrets.InvalidArgument):
        store.get_text(TENANT, "bin")
