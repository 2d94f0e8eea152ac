//! The training engine's use of ONNX Runtime: one session for the training
//! step (forward, loss, backward), one for the optimizer update, and one for
//! evaluation. Parameters and optimizer state live in ORT-allocated tensors
//! in two sets that swap roles every step (the optimizer reads set A and
//! writes set B, then B is current), all bound once with IoBinding, so no
//! parameter passes through Rust memory during training.
//!
//! On CUDA the parameters, gradients, optimizer state and accumulators live
//! in GPU memory; only the batch goes in, and the losses, rewards and the
//! gradient norm come out, each step.

use std::borrow::Cow;
use std::path::PathBuf;

use ndarray::ArrayD;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{Shape, Tensor, TensorRefMut};
use ort::AsPointer;

use super::session::{commit, session_builder, Device, RunnerOptions, TensorData, TensorInput};
use crate::error::{Error, Result};

/// Tensors by name, copied out of ONNX Runtime.
pub type NamedValues = Vec<(String, Vec<f32>)>;
/// A parameter's name and values, borrowed from host memory where they live
/// there.
pub type ParamView<'a> = (&'a str, Cow<'a, [f32]>);
/// An optimizer state tensor: `(kind, parameter, values)`, borrowed likewise.
pub type StateView<'a> = (&'a str, &'a str, Cow<'a, [f32]>);

/// A parameter and its starting value.
#[derive(Debug, Clone)]
pub struct ParamInit {
    pub name: String,
    pub dims: Vec<i64>,
    pub values: Vec<f32>,
}

/// The graphs and buffers of a training run.
#[derive(Debug, Clone)]
pub struct TrainingSpec {
    /// Inputs: each parameter by its name, plus the batch. Outputs: the
    /// values to fetch, and `grad/<name>` for every parameter.
    pub train_model: PathBuf,
    /// Inputs `param/<name>`, `grad/<name>`, `<state>/<name>` and scalars;
    /// outputs `new_param/<name>`, `new_<state>/<name>` and `grad_norm`.
    pub optim_model: PathBuf,
    /// Like the training graph without the backward pass (no grad outputs).
    pub eval_model: PathBuf,
    /// The accumulation graph, when gradients are summed over micro-batches
    /// (inputs `acc/<name>`, `grad/<name>`, `acc_keep`; outputs `new_acc/<name>`).
    pub accumulate_model: Option<PathBuf>,
    pub params: Vec<ParamInit>,
    /// Optimizer state kinds (`exp_avg`, `exp_avg_sq`); each starts at zero.
    pub state_kinds: Vec<String>,
    /// The piece size the optimizer graph was built with
    /// ([`crate::optim::pieces`]): the engine binds views of each piece.
    pub optimizer_piece: Option<usize>,
    /// Scalar inputs of the optimizer graph, fed per step.
    pub scalars: Vec<String>,
    pub options: RunnerOptions,
}

fn session(path: &std::path::Path, options: &RunnerOptions) -> Result<Session> {
    let mut b = session_builder(options)?;
    // ORT's memory pattern pre-plans one block from earlier runs' shapes. For
    // MiniLM on 2 cores it raised the peak by 35-60% and was not consistently
    // faster, so it is off unless the recipe asks (low_memory = false).
    if options.low_memory {
        b = b
            .with_memory_pattern(false)
            .map_err(|e| Error::Runtime(e.to_string()))?;
    }
    // Developer aid: ORT's own per-node profile, as JSON in this folder.
    if let Some(dir) = std::env::var_os("REWARDKIT_ORT_PROFILE") {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("session");
        b = b
            .with_profiling(std::path::Path::new(&dir).join(stem))
            .map_err(|e| Error::Runtime(e.to_string()))?;
    }
    commit(b, path)
}

fn cpu_info() -> Result<MemoryInfo<'static>> {
    Ok(MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )?)
}

/// Bind a batch and fresh dynamic outputs, run, and copy out `fetch`.
fn run_bound(
    session: &mut Session,
    binding: &mut IoBinding,
    batch: Vec<TensorInput<'_>>,
    dynamic: &[String],
    cpu: &MemoryInfo<'static>,
    fetch: &[&str],
    what: &str,
) -> Result<Vec<ArrayD<f32>>> {
    for input in batch {
        match input.value {
            TensorData::F32(a) => binding.bind_input(input.name, &Tensor::from_array(a)?)?,
            TensorData::I64(a) => binding.bind_input(input.name, &Tensor::from_array(a)?)?,
        }
    }
    // Outputs whose shape depends on the batch are rebound every run, so ONNX
    // Runtime allocates them at this run's shape.
    for name in dynamic {
        binding.bind_output_to_device(name.as_str(), cpu)?;
    }
    let out = {
        let _flush = super::denormal::FlushDenormals::new();
        session.run_binding(binding)?
    };
    fetch
        .iter()
        .map(|name| {
            let v = out
                .get(*name)
                .ok_or_else(|| Error::Internal(format!("{what} graph has no output {name}")))?;
            Ok(v.try_extract_array::<f32>()?.to_owned())
        })
        .collect()
}

/// A running training job's ORT side.
///
/// Fields drop in order: the bindings, then the views of pieces bound to
/// them, then the tensors, then the device allocator, then the sessions
/// whose allocator it is.
pub struct TrainingEngine {
    names: Vec<String>,
    train_bind: [IoBinding; 2],
    optim_bind: [IoBinding; 2],
    eval_bind: [IoBinding; 2],
    accum: Option<Accumulator>,
    /// Views of the pieces the optimizer graph updates separately.
    _views: Vec<View>,
    /// `params[set][i]`.
    params: [Vec<Tensor<f32>>; 2],
    /// Gradient buffers, written by the training graph.
    grads: Vec<Tensor<f32>>,
    /// `states[set][kind][i]`.
    states: [Vec<Vec<Tensor<f32>>>; 2],
    scalars: Vec<(String, Tensor<f32>)>,
    cur: usize,
    state_kinds: Vec<String>,
    /// Outputs with run-dependent shapes (losses, rewards), rebound before
    /// every run so ONNX Runtime allocates them at the run's shape.
    train_dynamic: Vec<String>,
    eval_dynamic: Vec<String>,
    cpu: MemoryInfo<'static>,
    /// Allocates parameters and state on the GPU (`None` on the CPU); held
    /// only so that it outlives them.
    _device: Option<Allocator>,
    train: Session,
    optim: Session,
    eval: Session,
}

/// Gradient accumulation: two accumulator sets that swap roles, and the
/// optimizer bindings that read from each.
struct Accumulator {
    /// `bind[a]` reads accumulator set `a` and the gradients, writes set `1 - a`.
    bind: [IoBinding; 2],
    keep: Tensor<f32>,
    /// The set holding the running sum.
    cur: usize,
    /// `optim_bind[param set][accumulator set]`.
    optim_bind: [[IoBinding; 2]; 2],
    _bufs: [Vec<Tensor<f32>>; 2],
    session: Session,
}

/// A tensor over memory it does not own: a piece of a parameter, gradient
/// or state buffer of the engine.
type View = TensorRefMut<'static, f32>;

/// A view of `len` elements of `t` from element `offset`, over the same
/// memory (wherever it lives).
fn piece_of(t: &Tensor<f32>, offset: usize, len: usize) -> Result<View> {
    let n: usize = t.shape().iter().map(|&d| d as usize).product();
    if offset + len > n {
        return Err(Error::Internal(format!(
            "piece {offset}+{len} of a tensor of {n} elements"
        )));
    }
    let base = t.data_ptr().cast::<f32>().cast_mut();
    // SAFETY: the range is inside `t`'s buffer (checked above). The view
    // is bound to the engine's optimizer bindings only, which are dropped
    // before the tensors whose memory they view (field order of
    // `TrainingEngine`).
    Ok(unsafe {
        TensorRefMut::<f32>::from_raw(
            t.memory_info().clone(),
            base.add(offset).cast(),
            Shape::new([len as i64]),
        )?
    })
}

/// Bind `view` as input `name` so that runs read the view's memory itself:
/// `IoBinding::bind_input` copies tensors over borrowed memory at bind time,
/// which would freeze a piece at its first values.
fn bind_input_in_place(b: &mut IoBinding, name: &str, view: &View) -> Result<()> {
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| Error::Internal(format!("input name {name:?} has a NUL byte")))?;
    // SAFETY: both pointers are live ORT objects; ONNX Runtime keeps its own
    // reference to the value's tensor (which does not own the memory).
    unsafe {
        let status = (ort::api().BindInput)(b.ptr_mut(), c_name.as_ptr(), view.ptr());
        ort::Error::result_from_status(status)?;
    }
    Ok(())
}

/// An optimizer binding: parameters and state of `set` in, of the other set
/// out, gradients from `grads`. A parameter the graph updates in pieces is
/// bound as views of its buffers, kept in `views`.
#[allow(clippy::too_many_arguments)]
fn optimizer_binding(
    optim: &Session,
    names: &[String],
    kinds: &[String],
    piece: Option<usize>,
    params: &mut [Vec<Tensor<f32>>; 2],
    states: &mut [Vec<Vec<Tensor<f32>>>; 2],
    set: usize,
    grads: &[Tensor<f32>],
    scalars: &[(String, Tensor<f32>)],
    cpu: &MemoryInfo<'static>,
    views: &mut Vec<View>,
) -> Result<IoBinding> {
    let mut b = optim.create_binding()?;
    let (p0, p1) = params.split_at_mut(1);
    let (s0, s1) = states.split_at_mut(1);
    let (p_in, p_out) = if set == 0 {
        (&p0[0], &mut p1[0])
    } else {
        (&p1[0], &mut p0[0])
    };
    let (s_in, s_out) = if set == 0 {
        (&s0[0], &mut s1[0])
    } else {
        (&s1[0], &mut s0[0])
    };
    for (i, name) in names.iter().enumerate() {
        let n: usize = p_in[i].shape().iter().map(|&d| d as usize).product();
        let cut = crate::optim::pieces(n, piece);
        if cut.len() == 1 {
            b.bind_input(format!("param/{name}"), &p_in[i])?;
            b.bind_input(format!("grad/{name}"), &grads[i])?;
            b.bind_output(format!("new_param/{name}"), &mut p_out[i])?;
            for (k, kind) in kinds.iter().enumerate() {
                b.bind_input(format!("{kind}/{name}"), &s_in[k][i])?;
                b.bind_output(format!("new_{kind}/{name}"), &mut s_out[k][i])?;
            }
            continue;
        }
        for (j, &(offset, len)) in cut.iter().enumerate() {
            let piece_name = crate::optim::piece_name(name, j, cut.len());
            let mut bind_in = |value: String, t: &Tensor<f32>| -> Result<()> {
                let v = piece_of(t, offset, len)?;
                bind_input_in_place(&mut b, &value, &v)?;
                views.push(v);
                Ok(())
            };
            bind_in(format!("param/{piece_name}"), &p_in[i])?;
            bind_in(format!("grad/{piece_name}"), &grads[i])?;
            for (k, kind) in kinds.iter().enumerate() {
                bind_in(format!("{kind}/{piece_name}"), &s_in[k][i])?;
            }
            // Outputs: the binding holds the view itself.
            b.bind_output(
                format!("new_param/{piece_name}"),
                piece_of(&p_out[i], offset, len)?,
            )?;
            for (k, kind) in kinds.iter().enumerate() {
                b.bind_output(
                    format!("new_{kind}/{piece_name}"),
                    piece_of(&s_out[k][i], offset, len)?,
                )?;
            }
        }
    }
    for (name, t) in scalars {
        b.bind_input(name.as_str(), t)?;
    }
    b.bind_output_to_device(crate::optim::GRAD_NORM, cpu)?;
    Ok(b)
}

impl std::fmt::Debug for TrainingEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingEngine")
            .field("params", &self.names.len())
            .field("current_set", &self.cur)
            .finish()
    }
}

/// A tensor in host memory holding `values` (zeros when `None`).
fn alloc_host(session: &Session, dims: &[i64], values: Option<&[f32]>) -> Result<Tensor<f32>> {
    let mut t = Tensor::<f32>::new(session.allocator(), dims.to_vec())?;
    let (_, data) = t.extract_tensor_mut();
    match values {
        Some(v) if v.len() == data.len() => data.copy_from_slice(v),
        Some(v) => {
            return Err(Error::Internal(format!(
                "{} values for a tensor of {} elements",
                v.len(),
                data.len()
            )))
        }
        None => data.fill(0.0),
    }
    Ok(t)
}

/// A tensor in the engine's memory (the GPU's when `device` is set), filled
/// from host values.
fn alloc(
    session: &Session,
    device: Option<&Allocator>,
    dims: &[i64],
    values: Option<&[f32]>,
) -> Result<Tensor<f32>> {
    let host = alloc_host(session, dims, values)?;
    match device {
        None => Ok(host),
        Some(a) => {
            let mut t = Tensor::<f32>::new(a, dims.to_vec())?;
            host.copy_into(&mut t)?;
            Ok(t)
        }
    }
}

/// A tensor's values in host memory: borrowed where it lives there, copied
/// from the device otherwise.
fn host_view(t: &Tensor<f32>) -> Result<Cow<'_, [f32]>> {
    if t.memory_info().allocation_device() == AllocationDevice::CPU {
        return Ok(Cow::Borrowed(t.extract_tensor().1));
    }
    let host = t.to(AllocationDevice::CPU, 0)?;
    Ok(Cow::Owned(host.extract_tensor().1.to_vec()))
}

/// Overwrite a tensor's values, wherever it lives.
fn write_values(t: &mut Tensor<f32>, values: &[f32], what: &str) -> Result<()> {
    let n: usize = t.shape().iter().map(|&d| d as usize).product();
    if n != values.len() {
        return Err(Error::InvalidArgument(format!(
            "{what}: {} values, expected {n}",
            values.len()
        )));
    }
    if t.memory_info().allocation_device() == AllocationDevice::CPU {
        t.extract_tensor_mut().1.copy_from_slice(values);
        return Ok(());
    }
    let host = Tensor::from_array((t.shape().to_vec(), values.to_vec()))?;
    host.copy_into(t)?;
    Ok(())
}

impl TrainingEngine {
    /// Load the three graphs and allocate parameters, gradients and state.
    pub fn new(spec: &TrainingSpec) -> Result<Self> {
        let mut train = session(&spec.train_model, &spec.options)?;
        let optim = session(&spec.optim_model, &spec.options)?;
        let eval = session(&spec.eval_model, &spec.options)?;
        let cpu = cpu_info()?;
        let device = match spec.options.device {
            Device::Cpu => None,
            Device::Cuda(id) => Some(Allocator::new(
                &train,
                MemoryInfo::new(
                    AllocationDevice::CUDA,
                    id,
                    AllocatorType::Device,
                    MemoryType::Default,
                )?,
            )?),
        };
        let dev = device.as_ref();
        let n = spec.params.len();
        let mut params: [Vec<Tensor<f32>>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
        let mut states: [Vec<Vec<Tensor<f32>>>; 2] = [Vec::new(), Vec::new()];
        let mut grads = Vec::with_capacity(n);
        for p in &spec.params {
            params[0].push(alloc(&train, dev, &p.dims, Some(&p.values))?);
            params[1].push(alloc(&train, dev, &p.dims, Some(&p.values))?);
            grads.push(alloc(&train, dev, &p.dims, None)?);
        }
        for set in states.iter_mut() {
            for _ in &spec.state_kinds {
                set.push(
                    spec.params
                        .iter()
                        .map(|p| alloc(&train, dev, &p.dims, None))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
        }
        let mut scalars = Vec::new();
        // Scalars stay in host memory: they are written every step, and ONNX
        // Runtime copies them to the device with the batch.
        for s in &spec.scalars {
            scalars.push((s.clone(), alloc_host(&train, &[], Some(&[0.0]))?));
        }
        let fetch_names: Vec<String> = train
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .filter(|n| !n.starts_with("grad/"))
            .collect();
        let eval_outputs: Vec<String> = eval
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();

        let mut train_bind = [train.create_binding()?, train.create_binding()?];
        let mut eval_bind = [eval.create_binding()?, eval.create_binding()?];
        for set in 0..2 {
            for (i, p) in spec.params.iter().enumerate() {
                train_bind[set].bind_input(p.name.as_str(), &params[set][i])?;
                train_bind[set].bind_output(format!("grad/{}", p.name), &mut grads[i])?;
                eval_bind[set].bind_input(p.name.as_str(), &params[set][i])?;
            }
            for name in &fetch_names {
                train_bind[set].bind_output_to_device(name.as_str(), &cpu)?;
            }
            for name in &eval_outputs {
                eval_bind[set].bind_output_to_device(name.as_str(), &cpu)?;
            }
        }
        let names: Vec<String> = spec.params.iter().map(|p| p.name.clone()).collect();
        let mut views = Vec::new();
        let mut optimizer_for = |set: usize, grads: &[Tensor<f32>]| {
            optimizer_binding(
                &optim,
                &names,
                &spec.state_kinds,
                spec.optimizer_piece,
                &mut params,
                &mut states,
                set,
                grads,
                &scalars,
                &cpu,
                &mut views,
            )
        };
        let optim_bind = [optimizer_for(0, &grads)?, optimizer_for(1, &grads)?];
        let accum = match &spec.accumulate_model {
            None => None,
            Some(path) => {
                let session = session(path, &spec.options)?;
                let mut bufs: [Vec<Tensor<f32>>; 2] =
                    [Vec::with_capacity(n), Vec::with_capacity(n)];
                for p in &spec.params {
                    bufs[0].push(alloc(&session, dev, &p.dims, None)?);
                    bufs[1].push(alloc(&session, dev, &p.dims, None)?);
                }
                let keep = alloc_host(&session, &[], Some(&[0.0]))?;
                let mut bind = [session.create_binding()?, session.create_binding()?];
                {
                    let (b0, b1) = bufs.split_at_mut(1);
                    for (a, b) in bind.iter_mut().enumerate() {
                        let (src, dst) = if a == 0 {
                            (&b0[0], &mut b1[0])
                        } else {
                            (&b1[0], &mut b0[0])
                        };
                        for (i, name) in names.iter().enumerate() {
                            b.bind_input(format!("acc/{name}"), &src[i])?;
                            b.bind_input(format!("grad/{name}"), &grads[i])?;
                            b.bind_output(format!("new_acc/{name}"), &mut dst[i])?;
                        }
                        b.bind_input(crate::optim::ACC_KEEP, &keep)?;
                    }
                }
                let optim_bind = [
                    [optimizer_for(0, &bufs[0])?, optimizer_for(0, &bufs[1])?],
                    [optimizer_for(1, &bufs[0])?, optimizer_for(1, &bufs[1])?],
                ];
                Some(Accumulator {
                    session,
                    bind,
                    keep,
                    cur: 0,
                    optim_bind,
                    _bufs: bufs,
                })
            }
        };
        // Keep `train` mutable only for binding creation above.
        let _ = &mut train;
        Ok(TrainingEngine {
            names: spec.params.iter().map(|p| p.name.clone()).collect(),
            grads,
            params,
            states,
            scalars,
            train_bind,
            optim_bind,
            eval_bind,
            cur: 0,
            state_kinds: spec.state_kinds.clone(),
            train_dynamic: fetch_names,
            eval_dynamic: eval_outputs,
            cpu,
            accum,
            _views: views,
            _device: device,
            train,
            optim,
            eval,
        })
    }

    /// Run the training graph on `batch` and return `fetch` outputs without
    /// updating anything (gradients land in the gradient buffers).
    pub fn forward_backward(
        &mut self,
        batch: Vec<TensorInput<'_>>,
        fetch: &[&str],
    ) -> Result<Vec<ArrayD<f32>>> {
        let binding = &mut self.train_bind[self.cur];
        run_bound(
            &mut self.train,
            binding,
            batch,
            &self.train_dynamic,
            &self.cpu,
            fetch,
            "training",
        )
    }

    /// Apply the optimizer with the gradients of the last `forward_backward`,
    /// feeding the given scalars; swaps the current parameter set.
    pub fn apply_update(&mut self, scalars: &[(&str, f32)], accumulated: bool) -> Result<f32> {
        if accumulated && self.accum.is_none() {
            return Err(Error::Internal("no accumulation graph was built".into()));
        }
        for (name, value) in scalars {
            let t = self
                .scalars
                .iter_mut()
                .find(|(n, _)| n == name)
                .ok_or_else(|| {
                    Error::Internal(format!("optimizer graph has no scalar input {name}"))
                })?;
            t.1.extract_tensor_mut().1[0] = *value;
        }
        let binding = match &self.accum {
            Some(acc) if accumulated => &acc.optim_bind[self.cur][acc.cur],
            _ => &self.optim_bind[self.cur],
        };
        let out = {
            let _flush = super::denormal::FlushDenormals::new();
            self.optim.run_binding(binding)?
        };
        let norm = out
            .get(crate::optim::GRAD_NORM)
            .ok_or_else(|| Error::Internal("optimizer graph has no grad_norm output".into()))?
            .try_extract_array::<f32>()?
            .iter()
            .next()
            .copied()
            .unwrap_or(f32::NAN);
        self.cur = 1 - self.cur;
        Ok(norm)
    }

    /// Add the gradients of the last `forward_backward` to the accumulator
    /// (`first`: start a new sum instead).
    pub fn accumulate(&mut self, first: bool) -> Result<()> {
        let acc = self
            .accum
            .as_mut()
            .ok_or_else(|| Error::Internal("no accumulation graph was built".into()))?;
        acc.keep.extract_tensor_mut().1[0] = if first { 0.0 } else { 1.0 };
        {
            let _flush = super::denormal::FlushDenormals::new();
            acc.session.run_binding(&acc.bind[acc.cur])?;
        }
        acc.cur = 1 - acc.cur;
        Ok(())
    }

    /// Run the evaluation graph with the current parameters.
    pub fn evaluate(
        &mut self,
        batch: Vec<TensorInput<'_>>,
        fetch: &[&str],
    ) -> Result<Vec<ArrayD<f32>>> {
        let binding = &mut self.eval_bind[self.cur];
        run_bound(
            &mut self.eval,
            binding,
            batch,
            &self.eval_dynamic,
            &self.cpu,
            fetch,
            "evaluation",
        )
    }

    /// Copy the current parameters out (for checkpoints and bundles).
    pub fn read_params(&self) -> Result<NamedValues> {
        Ok(self
            .param_views()?
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect())
    }

    /// The current parameters by name, borrowed where they live in host
    /// memory (copied from the GPU otherwise).
    pub fn param_views(&self) -> Result<Vec<ParamView<'_>>> {
        self.names
            .iter()
            .zip(&self.params[self.cur])
            .map(|(n, t)| Ok((n.as_str(), host_view(t)?)))
            .collect()
    }

    /// Copy the gradients of the last `forward_backward` out.
    pub fn read_grads(&self) -> Result<NamedValues> {
        self.names
            .iter()
            .zip(&self.grads)
            .map(|(n, t)| Ok((n.clone(), host_view(t)?.into_owned())))
            .collect()
    }

    /// Copy the current optimizer state out: `(kind, param, values)`.
    pub fn read_state(&self) -> Result<Vec<(String, String, Vec<f32>)>> {
        Ok(self
            .state_views()?
            .into_iter()
            .map(|(k, n, v)| (k.to_string(), n.to_string(), v.into_owned()))
            .collect())
    }

    /// The current optimizer state as `(kind, param, values)`, borrowed where
    /// it lives in host memory (copied from the GPU otherwise).
    pub fn state_views(&self) -> Result<Vec<StateView<'_>>> {
        let mut out = Vec::new();
        for (k, kind) in self.state_kinds.iter().enumerate() {
            for (i, name) in self.names.iter().enumerate() {
                out.push((
                    kind.as_str(),
                    name.as_str(),
                    host_view(&self.states[self.cur][k][i])?,
                ));
            }
        }
        Ok(out)
    }

    /// Overwrite the current parameters and state (resuming a checkpoint).
    pub fn write_state(
        &mut self,
        params: &[(String, Vec<f32>)],
        state: &[(String, String, Vec<f32>)],
    ) -> Result<()> {
        let cur = self.cur;
        for (name, values) in params {
            let i = self
                .names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| Error::InvalidArgument(format!("unknown parameter {name}")))?;
            write_values(
                &mut self.params[cur][i],
                values,
                &format!("parameter {name}"),
            )?;
        }
        for (kind, name, values) in state {
            let k = self
                .state_kinds
                .iter()
                .position(|s| s == kind)
                .ok_or_else(|| Error::InvalidArgument(format!("unknown optimizer state {kind}")))?;
            let i = self
                .names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| Error::InvalidArgument(format!("unknown parameter {name}")))?;
            write_values(
                &mut self.states[cur][k][i],
                values,
                &format!("state {kind}/{name}"),
            )?;
        }
        Ok(())
    }
}
