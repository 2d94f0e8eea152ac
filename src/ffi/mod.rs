//! The C ABI. Every `extern "C"` function of rewardkit lives here, and
//! nothing else does; `include/rewardkit.h` is generated from this module by
//! cbindgen.
//!
//! Conventions (see the README's "C contract"): opaque handles with
//! `_new`/`_open` and `_free` pairs, `_free(NULL)` is a no-op; fallible
//! functions return an `rk_error*` that is NULL on success; out-parameters
//! are written only on success; no panic crosses the boundary.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod error;
mod scorer;
mod trainer;
mod util;

pub use error::*;
pub use scorer::*;
pub use trainer::*;

use std::ffi::c_char;

/// Major version of rewardkit (and of its C ABI).
pub const RK_VERSION_MAJOR: u32 = 0;
/// Minor version of rewardkit.
pub const RK_VERSION_MINOR: u32 = 1;
/// Patch version of rewardkit.
pub const RK_VERSION_PATCH: u32 = 0;

static VERSION: &[u8] = concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes();

/// The library's version as a NUL-terminated string such as "0.1.0".
/// The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn rk_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_cargo_toml() {
        assert_eq!(
            RK_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            RK_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            RK_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        let s = unsafe { std::ffi::CStr::from_ptr(rk_version()) };
        assert_eq!(s.to_str().expect("utf8"), env!("CARGO_PKG_VERSION"));
    }
}
