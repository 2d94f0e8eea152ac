use std::ffi::{c_char, CString};

use crate::error::Error;

/// A required pointer argument was NULL.
pub const RK_ERR_NULL_ARGUMENT: u32 = 100;
/// A string argument was not valid UTF-8.
pub const RK_ERR_INVALID_UTF8: u32 = 101;
/// A batch had zero elements.
pub const RK_ERR_EMPTY_BATCH: u32 = 102;
/// Parallel inputs had different lengths. The C functions take one count
/// for all their arrays, so this code comes from the language bindings
/// (and the Rust API), which check their inputs' lengths.
pub const RK_ERR_LENGTH_MISMATCH: u32 = 103;
/// An argument had a value outside what is accepted.
pub const RK_ERR_INVALID_ARGUMENT: u32 = 104;
/// Reading or writing a file failed.
pub const RK_ERR_IO: u32 = 200;
/// A bundle is invalid (manifest, missing files, manifest and graph disagree).
pub const RK_ERR_INVALID_BUNDLE: u32 = 201;
/// An ONNX model could not be read or is not what was expected.
pub const RK_ERR_INVALID_MODEL: u32 = 202;
/// A tokenizer could not be loaded or failed to encode.
pub const RK_ERR_TOKENIZER: u32 = 203;
/// A file has a format version this build does not support.
pub const RK_ERR_UNSUPPORTED_VERSION: u32 = 204;
/// A backbone (config.json + weights) is invalid or unsupported.
pub const RK_ERR_INVALID_BACKBONE: u32 = 205;
/// The ONNX Runtime library could not be found or loaded.
pub const RK_ERR_RUNTIME_NOT_FOUND: u32 = 300;
/// ONNX Runtime reported an error.
pub const RK_ERR_RUNTIME: u32 = 301;
/// The requested execution provider (such as CUDA) is not available.
pub const RK_ERR_PROVIDER_UNAVAILABLE: u32 = 302;
/// A panic was caught at the C boundary: a bug in rewardkit.
pub const RK_ERR_PANIC: u32 = 900;
/// An internal invariant was broken: a bug in rewardkit.
pub const RK_ERR_INTERNAL: u32 = 901;

/// An error returned by a fallible rewardkit function. Owned by the caller,
/// who must release it with `rk_error_free`. Read it with `rk_error_code` and
/// `rk_error_message`. An `rk_error` may be read from any thread.
pub struct rk_error {
    code: u32,
    message: CString,
}

impl rk_error {
    pub(crate) fn boxed(code: u32, message: &str) -> *mut rk_error {
        let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        Box::into_raw(Box::new(rk_error { code, message }))
    }

    pub(crate) fn from_error(e: &Error) -> *mut rk_error {
        Self::boxed(e.code().as_u32(), &e.to_string())
    }
}

/// The stable numeric code of `err` (one of the `RK_ERR_*` values), or 0 if
/// `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rk_error_code(err: *const rk_error) -> u32 {
    // SAFETY: the caller passes NULL or a live rk_error from this library.
    match unsafe { err.as_ref() } {
        Some(e) => e.code,
        None => 0,
    }
}

/// The error's message as a NUL-terminated UTF-8 string, owned by `err` and
/// valid until `rk_error_free(err)`. Returns "" if `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rk_error_message(err: *const rk_error) -> *const c_char {
    // SAFETY: the caller passes NULL or a live rk_error from this library.
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Release an error. `rk_error_free(NULL)` does nothing.
#[no_mangle]
pub unsafe extern "C" fn rk_error_free(err: *mut rk_error) {
    if !err.is_null() {
        // SAFETY: err came from Box::into_raw in this library and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn constants_match_error_codes() {
        let pairs = [
            (RK_ERR_NULL_ARGUMENT, ErrorCode::NullArgument),
            (RK_ERR_INVALID_UTF8, ErrorCode::InvalidUtf8),
            (RK_ERR_EMPTY_BATCH, ErrorCode::EmptyBatch),
            (RK_ERR_LENGTH_MISMATCH, ErrorCode::LengthMismatch),
            (RK_ERR_INVALID_ARGUMENT, ErrorCode::InvalidArgument),
            (RK_ERR_IO, ErrorCode::Io),
            (RK_ERR_INVALID_BUNDLE, ErrorCode::InvalidBundle),
            (RK_ERR_INVALID_MODEL, ErrorCode::InvalidModel),
            (RK_ERR_TOKENIZER, ErrorCode::Tokenizer),
            (RK_ERR_UNSUPPORTED_VERSION, ErrorCode::UnsupportedVersion),
            (RK_ERR_INVALID_BACKBONE, ErrorCode::InvalidBackbone),
            (RK_ERR_RUNTIME_NOT_FOUND, ErrorCode::RuntimeNotFound),
            (RK_ERR_RUNTIME, ErrorCode::Runtime),
            (RK_ERR_PROVIDER_UNAVAILABLE, ErrorCode::ProviderUnavailable),
            (RK_ERR_PANIC, ErrorCode::Panic),
            (RK_ERR_INTERNAL, ErrorCode::Internal),
        ];
        for (c, code) in pairs {
            assert_eq!(c, code.as_u32());
        }
    }
}
