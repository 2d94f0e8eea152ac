//! The one error type of the crate, and its projection onto the stable
//! numeric codes of the C ABI.

use std::path::PathBuf;

/// Result alias used throughout rewardkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable error codes, as seen through the C ABI (`rk_error_code`).
///
/// Codes are grouped in ranges and never reused: 1xx are caller mistakes,
/// 2xx are problems with files (bundles, backbones, tokenizers), 3xx come from
/// the compute runtime, 9xx are bugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ErrorCode {
    /// A required pointer or argument was NULL / missing.
    NullArgument = 100,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 101,
    /// A batch had no elements.
    EmptyBatch = 102,
    /// Parallel inputs had different lengths.
    LengthMismatch = 103,
    /// An argument had a value outside what is accepted.
    InvalidArgument = 104,
    /// Reading or writing a file failed.
    Io = 200,
    /// A bundle (manifest, layout, or consistency between its files) is invalid.
    InvalidBundle = 201,
    /// An ONNX model could not be read, or is not what was expected.
    InvalidModel = 202,
    /// A tokenizer could not be loaded or failed to encode.
    Tokenizer = 203,
    /// A file has a format version this build does not support.
    UnsupportedVersion = 204,
    /// A backbone (config.json + weights) is invalid or unsupported.
    InvalidBackbone = 205,
    /// The ONNX Runtime library could not be found or loaded.
    RuntimeNotFound = 300,
    /// ONNX Runtime returned an error.
    Runtime = 301,
    /// The requested execution provider is not available.
    ProviderUnavailable = 302,
    /// A panic was caught at the C boundary (a bug in rewardkit).
    Panic = 900,
    /// An internal invariant was broken (a bug in rewardkit).
    Internal = 901,
}

impl ErrorCode {
    /// The numeric value of this code.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Everything that can go wrong in rewardkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0} must not be null")]
    NullArgument(String),
    #[error("{what} is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { what: String, offset: usize },
    #[error("empty batch: {0}")]
    EmptyBatch(&'static str),
    #[error("length mismatch: {what} ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid bundle {path}: {msg}")]
    InvalidBundle { path: PathBuf, msg: String },
    #[error("invalid ONNX model {what}: {msg}")]
    InvalidModel { what: String, msg: String },
    #[error("tokenizer {what}: {msg}")]
    Tokenizer { what: String, msg: String },
    #[error("{what}: unsupported format version {found} (this build of rewardkit reads up to {supported}; a newer rewardkit is needed)")]
    UnsupportedVersion {
        what: String,
        found: u64,
        supported: u64,
    },
    #[error("invalid backbone {path}: {msg}")]
    InvalidBackbone { path: PathBuf, msg: String },
    #[error("ONNX Runtime library not found; tried:\n{}", tried.join("\n"))]
    RuntimeNotFound { tried: Vec<String> },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("execution provider {provider} is not available: {msg}")]
    ProviderUnavailable { provider: String, msg: String },
    #[error("internal error (a bug in rewardkit): {0}")]
    Internal(String),
}

impl Error {
    /// The stable code for this error (what the C ABI reports).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NullArgument(_) => ErrorCode::NullArgument,
            Error::InvalidUtf8 { .. } => ErrorCode::InvalidUtf8,
            Error::EmptyBatch(_) => ErrorCode::EmptyBatch,
            Error::LengthMismatch { .. } => ErrorCode::LengthMismatch,
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::Io { .. } => ErrorCode::Io,
            Error::InvalidBundle { .. } => ErrorCode::InvalidBundle,
            Error::InvalidModel { .. } => ErrorCode::InvalidModel,
            Error::Tokenizer { .. } => ErrorCode::Tokenizer,
            Error::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Error::InvalidBackbone { .. } => ErrorCode::InvalidBackbone,
            Error::RuntimeNotFound { .. } => ErrorCode::RuntimeNotFound,
            Error::Runtime(_) => ErrorCode::Runtime,
            Error::ProviderUnavailable { .. } => ErrorCode::ProviderUnavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bundle(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::InvalidBundle {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn model(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidModel {
            what: what.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn backbone(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::InvalidBackbone {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(ErrorCode::NullArgument.as_u32(), 100);
        assert_eq!(ErrorCode::InvalidBundle.as_u32(), 201);
        assert_eq!(ErrorCode::RuntimeNotFound.as_u32(), 300);
        assert_eq!(ErrorCode::Panic.as_u32(), 900);
        let e = Error::LengthMismatch {
            what: "prompts vs responses",
            left: 2,
            right: 3,
        };
        assert_eq!(e.code(), ErrorCode::LengthMismatch);
        assert!(e.to_string().contains("2 vs 3"));
    }
}
