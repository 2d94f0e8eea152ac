//! Checkpoints: parameters and optimizer state (safetensors) and the run's
//! position (JSON), in `<out>/checkpoint/`.
//!
//! A checkpoint is written into `checkpoint.partial/`, every file synced,
//! then the previous one is moved to `checkpoint.prev/` and the new one
//! renamed into place. At every moment one complete checkpoint exists
//! (`checkpoint/`, or `checkpoint.prev/` after a crash between the two
//! renames), and loading falls back to it.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::weights::{write_f32_safetensors, Weights};
use crate::runtime::{ParamView, StateView};

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    pub epoch: u64,
    /// Index into the epoch's example order of the next example.
    pub position: usize,
    /// Seed of the data order.
    pub seed: u64,
    pub total_steps: u64,
}

/// Everything needed to continue a run exactly.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub state: TrainState,
    /// The recipe as TOML.
    pub recipe: String,
    pub params: Vec<(String, Vec<f32>)>,
    /// (state kind, parameter, values).
    pub optimizer: Vec<(String, String, Vec<f32>)>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u32,
    state: TrainState,
    recipe: String,
    /// Parameter names in order, with their dims.
    params: Vec<(String, Vec<usize>)>,
    state_kinds: Vec<String>,
}

const DIR: &str = "checkpoint";
const PARTIAL: &str = "checkpoint.partial";
const PREV: &str = "checkpoint.prev";

/// Write a checkpoint into `out/checkpoint`, crash-safely: the parameters
/// and the optimizer state `(kind, parameter, values)` are streamed to the
/// files from the views given (on the CPU, the engine's live buffers), with
/// no copy.
pub fn save(
    out: &Path,
    state: &TrainState,
    recipe: &str,
    params: &[ParamView<'_>],
    optimizer: &[StateView<'_>],
) -> Result<()> {
    let partial = out.join(PARTIAL);
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    // Tensors are stored flat; their shapes are the graphs'.
    let shapes: Vec<[usize; 1]> = params.iter().map(|(_, v)| [v.len()]).collect();
    let tensors: Vec<(&str, &[usize], &[f32])> = params
        .iter()
        .zip(&shapes)
        .map(|((n, v), s)| (*n, s.as_slice(), v.as_ref()))
        .collect();
    write_f32_safetensors(&partial.join("params.safetensors"), &tensors)?;
    let names: Vec<String> = optimizer
        .iter()
        .map(|(k, n, _)| format!("{k}/{n}"))
        .collect();
    let shapes: Vec<[usize; 1]> = optimizer.iter().map(|(_, _, v)| [v.len()]).collect();
    let tensors: Vec<(&str, &[usize], &[f32])> = optimizer
        .iter()
        .zip(names.iter().zip(&shapes))
        .map(|((_, _, v), (n, s))| (n.as_str(), s.as_slice(), v.as_ref()))
        .collect();
    write_f32_safetensors(&partial.join("optimizer.safetensors"), &tensors)?;
    let mut kinds: Vec<String> = Vec::new();
    for (k, _, _) in optimizer {
        if !kinds.iter().any(|x| x == k) {
            kinds.push(k.to_string());
        }
    }
    let meta = Meta {
        format: "rewardkit-checkpoint".into(),
        version: 1,
        state: state.clone(),
        recipe: recipe.to_string(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), vec![v.len()]))
            .collect(),
        state_kinds: kinds,
    };
    let text = serde_json::to_string_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
    crate::onnx::io::write_atomic(&partial.join("state.json"), text.as_bytes())?;
    let dir = out.join(DIR);
    let prev = out.join(PREV);
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&prev);
        std::fs::rename(&dir, &prev).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| Error::io(&dir, e))?;
    let _ = std::fs::remove_dir_all(&prev);
    // Make the renames durable.
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn load_from(dir: &Path) -> Result<Checkpoint> {
    let meta_path = dir.join("state.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let meta: Meta = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", meta_path.display())))?;
    if meta.format != "rewardkit-checkpoint" || meta.version != 1 {
        return Err(Error::UnsupportedVersion {
            what: meta_path.display().to_string(),
            found: meta.version as u64,
            supported: 1,
        });
    }
    let mut params = Weights::from_safetensors(&dir.join("params.safetensors"))?;
    let mut opt = Weights::from_safetensors(&dir.join("optimizer.safetensors"))?;
    let mut out_params = Vec::with_capacity(meta.params.len());
    let mut out_opt = Vec::new();
    for (name, dims) in &meta.params {
        let (_, w) = params.take(std::slice::from_ref(name), dims)?;
        out_params.push((name.clone(), w.data));
        for k in &meta.state_kinds {
            let (_, w) = opt.take(&[format!("{k}/{name}")], dims)?;
            out_opt.push((k.clone(), name.clone(), w.data));
        }
    }
    Ok(Checkpoint {
        state: meta.state,
        recipe: meta.recipe,
        params: out_params,
        optimizer: out_opt,
    })
}

/// Load the checkpoint in `out` (a training output directory, or the
/// checkpoint directory itself), falling back to the previous one when the
/// newest is incomplete.
pub fn load(out: &Path) -> Result<Checkpoint> {
    let candidates = if out.join("state.json").exists() {
        vec![out.to_path_buf()]
    } else {
        vec![out.join(DIR), out.join(PREV)]
    };
    let mut errors = Vec::new();
    for c in &candidates {
        match load_from(c) {
            Ok(ck) => return Ok(ck),
            Err(e) => errors.push(format!("{}: {e}", c.display())),
        }
    }
    Err(Error::InvalidArgument(format!(
        "no loadable checkpoint in {}: {}",
        out.display(),
        errors.join("; ")
    )))
}

/// Parameter values by name (for tests and tools).
pub fn params_map(ck: &Checkpoint) -> HashMap<&str, &[f32]> {
    ck.params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}
