//! Test-only fault injection: make a workflow fail right after one of its
//! writes, to prove the transaction leaves nothing of it behind; or hold a
//! workflow between its checks and its transaction ([`Faults::pause`]), so
//! a test can run a concurrent change in that gap.
//!
//! Compiled in with the `faults` cargo feature (CI enables it with
//! `--all-features`); without it every check is a no-op. The switch is per
//! [`Faults`] value (one per application state), not process-wide, so tests
//! running in parallel do not trip each other's faults.

use crate::error::Result;

#[derive(Clone, Default)]
pub struct Faults {
    #[cfg(feature = "faults")]
    inner: std::sync::Arc<std::sync::Mutex<Plan>>,
}

#[cfg(feature = "faults")]
#[derive(Default)]
struct Plan {
    /// The point to fail, and how many of its passes to let through first.
    armed: Option<(&'static str, usize)>,
    passed: Vec<&'static str>,
    /// The pause point to stop at (once), and its gate.
    paused: Option<(&'static str, std::sync::Arc<PauseGate>)>,
}

/// A workflow stopped at a pause point: [`PauseGate::reached`] returns once
/// it is there, [`PauseGate::release`] lets it go on.
#[cfg(feature = "faults")]
#[derive(Default)]
pub struct PauseGate {
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[cfg(feature = "faults")]
impl PauseGate {
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl Faults {
    /// Fails with an internal error if `point` is armed (once), and records
    /// that the point was passed.
    #[cfg(feature = "faults")]
    pub fn check(&self, point: &'static str) -> Result<()> {
        let mut plan = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        plan.passed.push(point);
        match plan.armed {
            Some((p, 0)) if p == point => {
                plan.armed = None;
                Err(crate::error::AppError::Internal(format!(
                    "injected fault at {point}"
                )))
            }
            Some((p, n)) if p == point => {
                plan.armed = Some((p, n - 1));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    #[cfg(not(feature = "faults"))]
    #[inline(always)]
    pub fn check(&self, _point: &'static str) -> Result<()> {
        Ok(())
    }

    /// Waits at `point` until released, if a test asked to stop there
    /// ([`Faults::pause_at`]); the first pass only.
    #[cfg(feature = "faults")]
    pub async fn pause(&self, point: &'static str) {
        let gate = {
            let mut plan = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match plan.paused.take() {
                Some((p, gate)) if p == point => Some(gate),
                other => {
                    plan.paused = other;
                    None
                }
            }
        };
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
    }

    #[cfg(not(feature = "faults"))]
    #[inline(always)]
    pub async fn pause(&self, _point: &'static str) {}

    /// The next pass through the pause point `point` waits for the returned
    /// gate's release.
    #[cfg(feature = "faults")]
    pub fn pause_at(&self, point: &'static str) -> std::sync::Arc<PauseGate> {
        let gate = std::sync::Arc::new(PauseGate::default());
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).paused = Some((point, gate.clone()));
        gate
    }

    /// The next pass through `point` fails.
    #[cfg(feature = "faults")]
    pub fn arm(&self, point: &'static str) {
        self.arm_nth(point, 0);
    }

    /// The pass through `point` after `skip` others fails.
    #[cfg(feature = "faults")]
    pub fn arm_nth(&self, point: &'static str, skip: usize) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).armed = Some((point, skip));
    }

    /// Whether an armed fault is still waiting to fire.
    #[cfg(feature = "faults")]
    pub fn pending(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .armed
            .is_some()
    }

    /// The points passed since the last call, in order (and forgets them).
    #[cfg(feature = "faults")]
    pub fn take_passed(&self) -> Vec<&'static str> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()).passed)
    }
}
