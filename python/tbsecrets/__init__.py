"""tbsecrets: the ThingsBoard secret store for Python (and the ThingsBoard IoT Gateway).

A thin layer over the Rust core (``tbsecrets._native``, built with PyO3): every call runs in
Rust with the GIL released, so other Python threads keep running during I/O and crypto.

Values
------
``get`` returns ``bytes`` and ``get_text`` returns ``str``; ``resolve_*`` return ``str``.
The core wipes every buffer it used, but the ``bytes``/``str`` objects handed to Python are
ordinary immutable Python objects: Python cannot wipe them, they stay in memory until the
garbage collector frees them (and freed memory is not cleared). Keep them short-lived, do not
log them, and prefer ``resolve_*``/``tbsecrets.gateway`` (which hand values straight to a file
or a config) over holding values in long-lived variables.

Errors
------
Every error is a :class:`SecretStorageError` subclass named after its code (``NotFound``,
``Unresolved``, ...) with ``.code`` (e.g. ``"NOT_FOUND"``), ``.code_number``, ``.message`` and
``.problems`` (the placeholders that failed, with name and byte offset; never a value).
"""

from ._native import (
    AlreadyExists,
    AuditVerification,
    Closed,
    Conflict,
    InternalError,
    Integrity,
    InUse,
    InvalidArgument,
    MalformedPlaceholder,
    NotFound,
    PermissionDenied,
    PlaceholderProblem,
    Principal,
    Reference,
    Role,
    RollbackDetected,
    KeyUnavailable,
    RotationPlan,
    RotationReport,
    SecretInfo,
    SecretPage,
    SecretStorage,
    SecretStorageError,
    Session,
    StorageError,
    TypeMismatch,
    Unresolved,
    Usage,
    VersionInfo,
    WrongMasterKey,
)

#: Secret types accepted by ``create`` (``"FILE"`` is an alias of ``"TEXT_FILE"``).
TEXT = "TEXT"
TEXT_FILE = "TEXT_FILE"

#: Every error class by its stable code name.
ERRORS_BY_CODE = {
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "TYPE_MISMATCH": TypeMismatch,
    "PERMISSION_DENIED": PermissionDenied,
    "IN_USE": InUse,
    "CONFLICT": Conflict,
    "MALFORMED_PLACEHOLDER": MalformedPlaceholder,
    "UNRESOLVED": Unresolved,
    "WRONG_MASTER_KEY": WrongMasterKey,
    "INTEGRITY": Integrity,
    "STORAGE": StorageError,
    "CLOSED": Closed,
    "INTERNAL": InternalError,
    "ROLLBACK_DETECTED": RollbackDetected,
    "KEY_UNAVAILABLE": KeyUnavailable,
}

__all__ = [
    "AlreadyExists",
    "AuditVerification",
    "Closed",
    "Conflict",
    "ERRORS_BY_CODE",
    "InternalError",
    "Integrity",
    "InUse",
    "InvalidArgument",
    "MalformedPlaceholder",
    "NotFound",
    "PermissionDenied",
    "PlaceholderProblem",
    "Principal",
    "Reference",
    "Role",
    "RollbackDetected",
    "KeyUnavailable",
    "RotationPlan",
    "RotationReport",
    "SecretInfo",
    "SecretPage",
    "SecretStorage",
    "SecretStorageError",
    "Session",
    "StorageError",
    "TEXT",
    "TEXT_FILE",
    "TypeMismatch",
    "Unresolved",
    "Usage",
    "VersionInfo",
    "WrongMasterKey",
]
