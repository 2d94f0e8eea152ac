use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{rk_error, RK_ERR_PANIC};
use crate::error::{Error, Result};

/// Run `f`, turning its error or any panic into an `rk_error*` (NULL on success).
pub(crate) fn guard(f: impl FnOnce() -> Result<()>) -> *mut rk_error {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(e)) => rk_error::from_error(&e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            rk_error::boxed(
                RK_ERR_PANIC,
                &format!("internal panic (a bug in rewardkit): {what}"),
            )
        }
    }
}

/// Run `f` for a function that cannot report errors; a panic gives `fallback`.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Borrow a C string as `&str`, naming `what` in errors.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullArgument(what.to_string()));
    }
    // SAFETY: the caller promises a NUL-terminated string that outlives 'a.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        what: what.to_string(),
        offset: e.valid_up_to(),
    })
}

/// Borrow a C string naming a path: like [`c_str`], and "" is refused (it
/// would mean the current directory, where nothing should be written).
pub(crate) unsafe fn c_path<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { c_str(p, what)? };
    if s.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} is an empty path")));
    }
    Ok(s)
}

/// Check an out-pointer is not NULL.
pub(crate) fn out_ptr<T>(p: *mut T, what: &'static str) -> Result<()> {
    if p.is_null() {
        Err(Error::NullArgument(what.to_string()))
    } else {
        Ok(())
    }
}
