//! Average pooling over time (Qwen2-Audio's `AvgPool1d(2, stride=2)`).
//!
//! Scalar only: one add per input value per window, far below the cost of the convolutions and attention around
//! it; the compiler vectorises the channel-contiguous inner loop.

/// `out[c, j] = mean(x[c, j * stride .. j * stride + kernel])` over `x` `[channels, t]`, no padding
/// (`ceil_mode = False`): `out` is `[channels, (t - kernel) / stride + 1]`, or empty when `t < kernel`.
///
/// # Panics
/// If `kernel` or `stride` is 0 or the lengths do not fit.
pub fn avg_pool1d(x: &[f32], channels: usize, kernel: usize, stride: usize, out: &mut [f32]) {
    assert!(
        kernel > 0 && stride > 0 && channels > 0,
        "kernel {kernel}, stride {stride}, {channels} channels"
    );
    assert!(
        x.len().is_multiple_of(channels),
        "{} values are not {channels} channels",
        x.len()
    );
    let t = x.len() / channels;
    let to = t.checked_sub(kernel).map_or(0, |r| r / stride + 1);
    assert!(
        out.len() == channels * to,
        "out of {} for {channels}x{to}",
        out.len()
    );
    let inv = 1.0 / kernel as f32;
    if to == 0 {
        return;
    }
    for (xr, or) in x.chunks_exact(t).zip(out.chunks_exact_mut(to)) {
        for (j, o) in or.iter_mut().enumerate() {
            *o = xr[j * stride..j * stride + kernel].iter().sum::<f32>() * inv;
        }
    }
}
