//! Learning-rate schedules, evaluated per step and fed to the optimizer graph.
//! They follow the Hugging Face `transformers` schedulers, so runs can be
//! compared step for step with TRL: during warm-up the factor is
//! `step / warmup` (the first update uses 0).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Constant after warm-up (the paper's schedule).
    #[default]
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Half-cosine decay to 0 at the last step.
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    /// Learning rate for update number `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        let factor = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => (1.0 - progress).max(0.0),
            ScheduleKind::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())).max(0.0)
            }
        };
        self.lr * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_shapes() {
        let s = |kind| Schedule {
            kind,
            lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
        };
        assert_eq!(s(ScheduleKind::Constant).lr_at(0), 0.0);
        assert_eq!(s(ScheduleKind::Constant).lr_at(2), 0.5);
        assert_eq!(s(ScheduleKind::Constant).lr_at(100), 1.0);
        assert_eq!(s(ScheduleKind::Linear).lr_at(4), 1.0);
        assert!((s(ScheduleKind::Linear).lr_at(9) - 0.5).abs() < 1e-12);
        assert_eq!(s(ScheduleKind::Linear).lr_at(14), 0.0);
        assert!((s(ScheduleKind::Cosine).lr_at(9) - 0.5).abs() < 1e-12);
        assert!(s(ScheduleKind::Cosine).lr_at(14).abs() < 1e-12);
    }
}
