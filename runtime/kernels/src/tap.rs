//! A calibration tap: an optional, process-global observer of the inputs of float-weight matmuls.
//!
//! The quantizer sets one while it runs the float reference model over calibration text, to collect per-column
//! activation statistics for every matrix (an "importance matrix"); it tells matrices apart by the address of their
//! data ([`WeightRef::as_bytes`]), so the model needs no change. Off by default: then the cost in
//! [`crate::Exec::matmul`] is one relaxed atomic load per call. Quant weights are never observed.

use crate::WeightRef;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The observer: called with the weight, the input `x` (`[n, cols]`, row-major) and `n`, on the calling thread,
/// before the product is computed. It must not call [`set_tap`] (it would wait on itself).
pub type Tap = Arc<dyn Fn(WeightRef<'_>, &[f32], usize) + Send + Sync>;

static ON: AtomicBool = AtomicBool::new(false);
static TAP: RwLock<Option<Tap>> = RwLock::new(None);

/// Installs (`Some`) or removes (`None`) the process-global tap. Calls already inside the old tap finish with it.
pub fn set_tap(tap: Option<Tap>) {
    let mut g = TAP.write().unwrap_or_else(|e| e.into_inner());
    ON.store(tap.is_some(), Ordering::Relaxed);
    *g = tap;
}

/// Whether a tap is installed.
pub fn tap_active() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Shows `w`, `x`, `n` to the tap if one is set and `w` is a float weight.
#[inline]
pub(crate) fn observe(w: WeightRef<'_>, x: &[f32], n: usize) {
    if ON.load(Ordering::Relaxed) {
        observe_slow(w, x, n);
    }
}

#[cold]
fn observe_slow(w: WeightRef<'_>, x: &[f32], n: usize) {
    // Clone the Arc and drop the lock before calling, so a slow tap never blocks `set_tap` for long.
    if w.weight_type().block_elems() != 1 {
        return;
    }
    let tap = TAP.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(t) = tap {
        t(w, x, n);
    }
}

impl<'a> WeightRef<'a> {
    /// The weight's data as bytes (same address and length as the slice it wraps), e.g. to find which tensor of a
    /// mapped file it is.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            WeightRef::F32(s) => bytemuck::cast_slice(s),
            WeightRef::F16(s) => bytemuck::cast_slice(s),
            WeightRef::BF16(s) => bytemuck::cast_slice(s),
            WeightRef::Q8(s) => bytemuck::cast_slice(s),
            WeightRef::Q4(s) => bytemuck::cast_slice(s),
            WeightRef::Q4M(s) => bytemuck::cast_slice(s),
            WeightRef::Q2M(s) => bytemuck::cast_slice(s),
            WeightRef::Q8x8(s) => bytemuck::cast_slice(s),
            WeightRef::Q4x8(s) => bytemuck::cast_slice(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn tap_sees_float_matmul_inputs_of_its_weight() {
        let w: Vec<f32> = (0..64 * 4).map(|i| (i % 7) as f32).collect();
        let base = w.as_ptr() as usize;
        type Calls = Arc<Mutex<Vec<(usize, Vec<f32>)>>>;
        let seen: Calls = Arc::default();
        let s = seen.clone();
        // Other tests may run matmuls concurrently: record only calls on this test's weight.
        set_tap(Some(Arc::new(
            move |w: WeightRef<'_>, x: &[f32], n: usize| {
                if w.as_bytes().as_ptr() as usize == base {
                    s.lock().unwrap().push((n, x.to_vec()));
                }
            },
        )));
        let x: Vec<f32> = (0..2 * 64).map(|i| i as f32 * 0.01).collect();
        let mut out = vec![0f32; 2 * 4];
        crate::Exec::single(crate::Isa::Scalar).unwrap().matmul(
            WeightRef::F32(&w),
            &x,
            2,
            &mut out,
        );
        set_tap(None);
        crate::Exec::single(crate::Isa::Scalar).unwrap().matmul(
            WeightRef::F32(&w),
            &x,
            2,
            &mut out,
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "seen once while set, never after");
        assert_eq!(seen[0], (2, x));
        assert_eq!(WeightRef::F32(&w).as_bytes().len(), w.len() * 4);
    }
}
