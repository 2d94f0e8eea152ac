use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use ndarray::ArrayD;
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::Tensor;

use super::library::environment;
use crate::error::{Error, Result};

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider on the given device.
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = Error;
    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .filter(|n: &i32| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "unknown device {s:?} (expected cpu, cuda or cuda:N)"
                    ))
                }),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
        }
    }
}

/// Register the execution provider of `device` on a session builder. CUDA
/// runs float32 as float32 (TF32 tensor-core math off), so a CUDA session
/// computes what the CPU one does up to summation order; half-precision
/// bundles are the fast path on GPUs.
fn with_device(
    builder: ort::session::builder::SessionBuilder,
    device: Device,
) -> Result<ort::session::builder::SessionBuilder> {
    match device {
        Device::Cpu => Ok(builder),
        Device::Cuda(id) => {
            let ep = ort::ep::CUDA::default()
                .with_device_id(id)
                .with_tf32(false)
                .build()
                .error_on_failure();
            builder
                .with_execution_providers([ep])
                .map_err(|e| Error::ProviderUnavailable {
                    provider: format!("CUDA (device {id})"),
                    msg: e.to_string(),
                })
        }
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Intra-op threads per session; 0 lets ONNX Runtime choose (one per core).
    pub threads: usize,
    pub device: Device,
    /// Sessions that may run at once. Each holds its own copy of the weights;
    /// callers beyond this wait for a free one.
    pub max_sessions: usize,
    /// Training sessions: allocate intermediates as each run goes instead of
    /// ONNX Runtime's memory pattern (a block pre-planned from earlier runs'
    /// shapes). Lower peak, and no slower in our measurements; the default.
    pub low_memory: bool,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            threads: 0,
            device: Device::Cpu,
            max_sessions: 1,
            low_memory: true,
        }
    }
}

/// The values of one input tensor.
#[derive(Debug, Clone)]
pub enum TensorData {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

impl<D: ndarray::Dimension> From<ndarray::Array<i64, D>> for TensorData {
    fn from(a: ndarray::Array<i64, D>) -> Self {
        TensorData::I64(a.into_dyn())
    }
}

impl<D: ndarray::Dimension> From<ndarray::Array<f32, D>> for TensorData {
    fn from(a: ndarray::Array<f32, D>) -> Self {
        TensorData::F32(a.into_dyn())
    }
}

/// One named input.
pub struct TensorInput<'a> {
    pub name: &'a str,
    pub value: TensorData,
}

impl<'a> TensorInput<'a> {
    pub fn new(name: &'a str, value: impl Into<TensorData>) -> Self {
        TensorInput {
            name,
            value: value.into(),
        }
    }
}

struct Pool {
    idle: Vec<Session>,
    created: usize,
}

/// Runs one ONNX model, safely from many threads: each call borrows a session
/// from a pool (created on demand up to `max_sessions`).
pub struct ModelRunner {
    path: PathBuf,
    options: RunnerOptions,
    pool: Mutex<Pool>,
    freed: Condvar,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// Static dims of each output (`None` where symbolic).
    output_dims: Vec<Vec<Option<i64>>>,
}

impl std::fmt::Debug for ModelRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRunner")
            .field("path", &self.path)
            .field("inputs", &self.input_names)
            .field("outputs", &self.output_names)
            .finish()
    }
}

/// A session builder with the settings every rewardkit session shares:
/// full graph optimisation, subnormals flushed, `options.threads` intra-op
/// threads, `options.device`, and worker threads parked when a run returns.
pub(crate) fn session_builder(
    options: &RunnerOptions,
) -> Result<ort::session::builder::SessionBuilder> {
    fn rt(e: impl std::fmt::Display) -> Error {
        Error::Runtime(e.to_string())
    }
    let mut builder = Session::builder(environment()?)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(rt)?
        // ONNX Runtime's pool threads flush subnormals; the calling thread
        // does so while it runs (see `denormal`).
        .with_flush_to_zero()
        .map_err(rt)?
        // By default the workers spin on for a while after a run returns
        // (about 50 ms of CPU time each time, measured on 2 cores), taking a
        // core from whatever the process does next: the trainer's other
        // session (it alternates training and optimizer runs; parked, the
        // optimizer run took 97-111 ms against 130-140 ms, three
        // alternations), another scorer's session, or the host's own
        // threads. Within a run they still spin between operators.
        .with_config_entry("session.force_spinning_stop", "1")
        .map_err(rt)?;
    if options.threads > 0 {
        builder = builder.with_intra_threads(options.threads).map_err(rt)?;
    }
    // rewardkit's own CPU kernels (AdamW, the GELU and LayerNorm gradients),
    // which training graphs built with `fused_kernels` use. Registering them
    // costs nothing where a graph does not use them; every session does, so
    // that `commit` can tell when ONNX Runtime has seen the domain.
    builder = builder
        .with_operators(super::kernels::domain()?)
        .map_err(rt)?;
    with_device(builder, options.device)
}

/// Load the model at `path` into a session from `builder`.
pub(crate) fn commit(
    mut builder: ort::session::builder::SessionBuilder,
    path: &Path,
) -> Result<Session> {
    // The first session that loads with rewardkit's kernel domain (every
    // session, see `session_builder`) adds the domain to a process-wide
    // table of ONNX Runtime's, which checks and inserts without a lock: two
    // sessions doing so at once fail with "the domain is already exist".
    // Until one load has succeeded, loads take turns; after that the domain
    // is known and they run freely.
    static DOMAIN_KNOWN: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut known = DOMAIN_KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let turn = if *known {
        drop(known);
        None
    } else {
        Some(&mut known)
    };
    let session = builder.commit_from_file(path);
    if let (Some(k), Ok(_)) = (turn, &session) {
        **k = true;
    }
    session.map_err(|e| {
        Error::model(
            path.display().to_string(),
            format!("ONNX Runtime cannot load it: {e}"),
        )
    })
}

fn make_session(path: &Path, options: &RunnerOptions) -> Result<Session> {
    commit(session_builder(options)?, path)
}

impl ModelRunner {
    /// Load the model at `path` into a first session.
    pub fn open(path: &Path, options: RunnerOptions) -> Result<Self> {
        if options.max_sessions == 0 {
            return Err(Error::InvalidArgument(
                "max_sessions must be at least 1".into(),
            ));
        }
        let first = make_session(path, &options)?;
        let input_names = first
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        let output_names = first
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output_dims = first
            .outputs()
            .iter()
            .map(|o| match o.dtype() {
                ort::value::ValueType::Tensor { shape, .. } => shape
                    .iter()
                    .map(|&d| if d >= 0 { Some(d) } else { None })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Ok(ModelRunner {
            path: path.to_path_buf(),
            options,
            pool: Mutex::new(Pool {
                idle: vec![first],
                created: 1,
            }),
            freed: Condvar::new(),
            input_names,
            output_names,
            output_dims,
        })
    }

    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Static dims of output `i` (`None` for symbolic ones).
    pub fn output_dims(&self, i: usize) -> Option<&[Option<i64>]> {
        self.output_dims.get(i).map(Vec::as_slice)
    }

    fn checkout(&self) -> Result<Session> {
        let mut pool = self
            .pool
            .lock()
            .map_err(|_| Error::Internal("session pool poisoned".into()))?;
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.created < self.options.max_sessions {
                pool.created += 1;
                drop(pool);
                return make_session(&self.path, &self.options).inspect_err(|_| {
                    if let Ok(mut p) = self.pool.lock() {
                        p.created -= 1;
                    }
                });
            }
            pool = self
                .freed
                .wait(pool)
                .map_err(|_| Error::Internal("session pool poisoned".into()))?;
        }
    }

    fn give_back(&self, s: Session) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(s);
        }
        self.freed.notify_one();
    }

    /// Run the model and return the named float outputs.
    pub fn run(&self, inputs: Vec<TensorInput<'_>>, outputs: &[&str]) -> Result<Vec<ArrayD<f32>>> {
        let mut values: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(inputs.len());
        for input in inputs {
            let v = match input.value {
                TensorData::F32(a) => Tensor::from_array(a)?.into_dyn(),
                TensorData::I64(a) => Tensor::from_array(a)?.into_dyn(),
            };
            values.push((input.name.to_string(), v));
        }
        let mut session = self.checkout()?;
        let result = (|| {
            let out = {
                let _flush = super::denormal::FlushDenormals::new();
                session.run(values)?
            };
            outputs
                .iter()
                .map(|name| {
                    let v = out.get(*name).ok_or_else(|| {
                        Error::model(self.path.display().to_string(), format!("no output {name}"))
                    })?;
                    Ok(v.try_extract_array::<f32>()?.to_owned())
                })
                .collect::<Result<Vec<_>>>()
        })();
        self.give_back(session);
        result
    }
}
