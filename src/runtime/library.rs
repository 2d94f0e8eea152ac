use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The ONNX Runtime version rewardkit is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";
/// Environment variable naming the ONNX Runtime shared library to load.
pub const ORT_LIB_ENV: &str = "REWARDKIT_ORT_LIB";

fn lib_file_name() -> String {
    format!(
        "{}onnxruntime{}.{ORT_VERSION}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Where rewardkit looks for ONNX Runtime, in order: `$REWARDKIT_ORT_LIB`
/// (and only it, when set); `.rewardkit/ort/` in the current directory or any
/// of its parents, and beside the running executable or any of its parents;
/// then the system's library search path.
pub fn ort_library_candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os(ORT_LIB_ENV).filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let rel = Path::new(".rewardkit").join("ort").join(lib_file_name());
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |start: &Path| {
        for dir in start.ancestors() {
            let c = dir.join(&rel);
            if !out.contains(&c) {
                out.push(c);
            }
        }
    };
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        push_ancestors(&dir);
    }
    // An installed or packaged librewardkit keeps ONNX Runtime beside itself
    // (`make install`, the Python wheel, the Java jar's unpacked resources).
    if let Some(dir) = own_library_dir() {
        for c in [
            dir.join(lib_file_name()),
            dir.join("rewardkit").join(lib_file_name()),
        ] {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out.push(PathBuf::from(lib_file_name()));
    out.push(PathBuf::from(format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )));
    out
}

/// The directory of the shared object (or executable) this code lives in.
#[cfg(unix)]
fn own_library_dir() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_library_dir as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables; `info` is a valid out-pointer.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    path.parent().map(Path::to_path_buf)
}

#[cfg(not(unix))]
fn own_library_dir() -> Option<PathBuf> {
    None
}

/// ORT's log level: `$REWARDKIT_ORT_LOG` (verbose, info, warning, error), else fatal only.
fn ort_log_level() -> ort::logging::LogLevel {
    use ort::logging::LogLevel;
    match std::env::var("REWARDKIT_ORT_LOG").as_deref() {
        Ok("verbose") => LogLevel::Verbose,
        Ok("info") => LogLevel::Info,
        Ok("warning") => LogLevel::Warning,
        Ok("error") => LogLevel::Error,
        _ => LogLevel::Fatal,
    }
}

static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, Vec<String>>> =
    OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let mut tried = Vec::new();
        let from_env = std::env::var_os(ORT_LIB_ENV).is_some_and(|p| !p.is_empty());
        for candidate in ort_library_candidates() {
            let is_bare_name = candidate.components().count() == 1;
            if !is_bare_name && !candidate.exists() {
                let how = if from_env {
                    format!(" (from ${ORT_LIB_ENV})")
                } else {
                    String::new()
                };
                tried.push(format!("  {}{how}: no such file", candidate.display()));
                continue;
            }
            match ort::init_from(&candidate) {
                Ok(builder) => match builder.with_name("rewardkit").with_telemetry(false).build() {
                    Ok(env) => {
                        // Errors reach callers as rewardkit errors; ORT's own
                        // log would print them a second time.
                        env.set_log_level(ort_log_level());
                        return Ok(env);
                    }
                    Err(e) => tried.push(format!(
                        "  {}: loaded, but creating the environment failed: {e}",
                        candidate.display()
                    )),
                },
                Err(e) => tried.push(format!("  {}: {e}", candidate.display())),
            }
        }
        Err(tried)
    });
    env.as_ref().map_err(|tried| Error::RuntimeNotFound {
        tried: tried.clone(),
    })
}
