//! The mapping between [`ErrorCode`](crate::ErrorCode)s and their C form: the
//! [`tbs_status`] of each code and the stable name `tbs_status_str` returns for a number.

use super::tbs_status;
use std::ffi::{c_int, CStr};

/// The C status of an error code.
pub(crate) fn status_of(code: crate::ErrorCode) -> tbs_status {
    use crate::ErrorCode as E;
    use tbs_status::*;
    match code {
        E::Ok => TBS_OK,
        E::InvalidArgument => TBS_INVALID_ARGUMENT,
        E::NotFound => TBS_NOT_FOUND,
        E::AlreadyExists => TBS_ALREADY_EXISTS,
        E::TypeMismatch => TBS_TYPE_MISMATCH,
        E::PermissionDenied => TBS_PERMISSION_DENIED,
        E::InUse => TBS_IN_USE,
        E::Conflict => TBS_CONFLICT,
        E::MalformedPlaceholder => TBS_MALFORMED_PLACEHOLDER,
        E::Unresolved => TBS_UNRESOLVED,
        E::WrongMasterKey => TBS_WRONG_MASTER_KEY,
        E::Integrity => TBS_INTEGRITY,
        E::Storage => TBS_STORAGE,
        E::Closed => TBS_CLOSED,
        E::Internal => TBS_INTERNAL,
        E::RollbackDetected => TBS_ROLLBACK_DETECTED,
        E::KeyUnavailable => TBS_KEY_UNAVAILABLE,
    }
}

/// The NUL-terminated name of a status number.
pub(super) fn status_name(status: c_int) -> &'static CStr {
    use crate::ErrorCode as E;
    match E::from_i32(status) {
        Some(E::Ok) => c"OK",
        Some(E::InvalidArgument) => c"INVALID_ARGUMENT",
        Some(E::NotFound) => c"NOT_FOUND",
        Some(E::AlreadyExists) => c"ALREADY_EXISTS",
        Some(E::TypeMismatch) => c"TYPE_MISMATCH",
        Some(E::PermissionDenied) => c"PERMISSION_DENIED",
        Some(E::InUse) => c"IN_USE",
        Some(E::Conflict) => c"CONFLICT",
        Some(E::MalformedPlaceholder) => c"MALFORMED_PLACEHOLDER",
        Some(E::Unresolved) => c"UNRESOLVED",
        Some(E::WrongMasterKey) => c"WRONG_MASTER_KEY",
        Some(E::Integrity) => c"INTEGRITY",
        Some(E::Storage) => c"STORAGE",
        Some(E::Closed) => c"CLOSED",
        Some(E::Internal) => c"INTERNAL",
        Some(E::RollbackDetected) => c"ROLLBACK_DETECTED",
        Some(E::KeyUnavailable) => c"KEY_UNAVAILABLE",
        None => c"UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn statuses_equal_error_codes_and_names() {
        for code in ErrorCode::ALL {
            let status = status_of(code);
            assert_eq!(status as i32, code.as_i32());
            let name = status_name(code.as_i32()).to_str().unwrap();
            assert_eq!(name, code.as_str());
        }
        assert_eq!(status_name(-1), c"UNKNOWN");
        assert_eq!(status_name(17), c"UNKNOWN");
    }
}
