//! The two `smart_resize`s of transformers 5.23, exactly as the python computes them.
//!
//! [`smart_resize`] (MuseGlimmerImageProcessor / MuseGlimmerVideoProcessor): the integer grid of `patch`-sized
//! cells closest to the image's aspect ratio with at most `max_tokens` cells.
//!
//! - ideal grid `h / patch` x `w / patch`; over the cap it is scaled to `sqrt(max_tokens / ratio)` x that times
//!   the ratio;
//! - candidates: the floor/ceil combinations, deduplicated through a python `set`, kept if both sides are >= 1
//!   and the product is within the cap (else the rounded ideal grid, python's half-to-even `round`);
//! - the winner is python's `min` over `abs(gh / gw - h / w)`: on a tie the first candidate in the set's
//!   iteration order wins, so that order is reproduced here (CPython's tuple hash and its set probing for a
//!   table of 8 slots). A square image scaled down ties (n, n) with (n + 1, n + 1) and really depends on it.
//!
//! [`smart_resize_pixels`] (Qwen2VLImageProcessor, both backends; Qwen2.5-VL's too): each side rounded to a
//! multiple of `factor`, then, if the area is over `max_pixels` (under `min_pixels`), both sides scaled by
//! `beta = sqrt(area / max_pixels)` (`sqrt(min_pixels / area)`) and floored (ceiled) to multiples of
//! `factor`, the floor at least `factor`. Python's arithmetic: true division and `math.sqrt` in f64,
//! `round` half to even; the area bound is checked once, so the result may leave the other bound.

/// Python's `round(v)` of a non-negative float (half to even), as an integer.
fn py_round(v: f64) -> u64 {
    v.round_ties_even() as u64
}

/// CPython's `hash(int)` for the small non-negative values used here (`hash(-1)` is -2, not needed).
fn py_hash_int(v: u64) -> u64 {
    // Py_hash modulus is 2^61 - 1; grid sides are far below it.
    v
}

/// CPython >= 3.8 `hash((a, b))` (xxHash-based tuplehash, 64-bit).
fn py_hash_pair(a: u64, b: u64) -> u64 {
    const P1: u64 = 11400714785074694791;
    const P2: u64 = 14029467366897019727;
    const P5: u64 = 2870177450012600261;
    let mut acc = P5;
    for lane in [py_hash_int(a), py_hash_int(b)] {
        acc = acc.wrapping_add(lane.wrapping_mul(P2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(P1);
    }
    acc = acc.wrapping_add(2 ^ (P5 ^ 3527539));
    if acc == u64::MAX {
        return 1546275796;
    }
    acc
}

/// `list(set(items))` for at most 4 pairs: CPython's set inserts into a table of 8 slots (no resize below 5
/// entries), probing `i = (5 i + 1 + perturb) & 7` with `perturb >>= 5` (linear probing needs 9 free slots
/// past `i`, which a table of 8 never has), and iterates in slot order.
fn py_set_list(items: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut table: [Option<(u64, (u64, u64))>; 8] = [None; 8];
    for &it in items {
        let h = py_hash_pair(it.0, it.1);
        let mut i = (h & 7) as usize;
        let mut perturb = h;
        loop {
            match table[i] {
                None => {
                    table[i] = Some((h, it));
                    break;
                }
                Some((eh, e)) if eh == h && e == it => break,
                Some(_) => {
                    perturb >>= 5;
                    i = ((i as u64)
                        .wrapping_mul(5)
                        .wrapping_add(1)
                        .wrapping_add(perturb)
                        & 7) as usize;
                }
            }
        }
    }
    table.iter().flatten().map(|&(_, it)| it).collect()
}

/// The resize target `(height, width)` in pixels: multiples of `patch`, at most `max_tokens` cells.
/// `height`, `width`, `patch` and `max_tokens` must be at least 1.
pub fn smart_resize(
    height: usize,
    width: usize,
    patch: usize,
    max_tokens: usize,
) -> (usize, usize) {
    let (h, w, p, m) = (height as f64, width as f64, patch as f64, max_tokens as f64);
    let mut ih = h / p;
    let mut iw = w / p;
    let ratio = if ih > 0.0 { iw / ih } else { 1.0 };
    if ih * iw > m {
        ih = (m / ratio).powf(0.5);
        iw = ih * ratio;
    }
    let (fh, ch) = (ih.floor() as u64, ih.ceil() as u64);
    let (fw, cw) = (iw.floor() as u64, iw.ceil() as u64);
    // itertools.product([floor h, ceil h], [floor w, ceil w]), in that order, into a set.
    let listed = py_set_list(&[(fh, fw), (fh, cw), (ch, fw), (ch, cw)]);
    let mut cands: Vec<(u64, u64)> = listed
        .into_iter()
        .filter(|&(a, b)| a >= 1 && b >= 1 && a.saturating_mul(b) <= max_tokens as u64)
        .collect();
    if cands.is_empty() {
        let r = |v: f64| py_round(v).max(1);
        cands.push((r(ih), r(iw)));
    }
    let target = h / w;
    let mut best = cands[0];
    let mut best_d = (best.0 as f64 / best.1 as f64 - target).abs();
    for &c in &cands[1..] {
        let d = (c.0 as f64 / c.1 as f64 - target).abs();
        if d < best_d {
            best = c;
            best_d = d;
        }
    }
    (best.0 as usize * patch, best.1 as usize * patch)
}

/// Qwen2-VL's resize target `(height, width)` for an image of `height` x `width` (both at least 1): multiples
/// of `factor` (`patch_size * merge_size`) with about `min_pixels..=max_pixels` pixels. `None` where the
/// python raises: an aspect ratio over 200.
pub fn smart_resize_pixels(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Option<(usize, usize)> {
    if height == 0 || width == 0 || factor == 0 {
        return None;
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    if h.max(w) / h.min(w) > 200.0 {
        return None;
    }
    let f64_of = |v: u64| v as f64;
    let fu = factor as u64;
    let mut h_bar = py_round(h / f).saturating_mul(fu);
    let mut w_bar = py_round(w / f).saturating_mul(fu);
    // The areas are below 2^53 (sides are capped far lower), so python's int/int division is this one.
    let area = f64_of(height as u64 * width as u64);
    if h_bar.saturating_mul(w_bar) > max_pixels as u64 {
        let beta = (area / max_pixels as f64).sqrt();
        h_bar = fu.max(((h / beta / f).floor() as u64).saturating_mul(fu));
        w_bar = fu.max(((w / beta / f).floor() as u64).saturating_mul(fu));
    } else if h_bar.saturating_mul(w_bar) < min_pixels as u64 {
        let beta = (min_pixels as f64 / area).sqrt();
        h_bar = ((h * beta / f).ceil() as u64).saturating_mul(fu);
        w_bar = ((w * beta / f).ceil() as u64).saturating_mul(fu);
    }
    Some((usize::try_from(h_bar).ok()?, usize::try_from(w_bar).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_hash_matches_cpython() {
        // python3 -c "print(hash((1, 2)), hash((35, 36)))" (CPython 3.8+ on 64-bit)
        assert_eq!(py_hash_pair(1, 2) as i64, -3550055125485641917);
        assert_eq!(py_hash_pair(0, 0) as i64, -8458139203682520985);
    }

    #[test]
    fn grids_of_the_fixture_runs() {
        // muse_glimmer_image manifests: chelsea 451x300 -> 22x34 patches of 14 (308x476), coffee 600x400 ->
        // 392x588.
        assert_eq!(smart_resize(300, 451, 28, 4096), (308, 476));
        assert_eq!(smart_resize(400, 600, 28, 4096), (392, 588));
    }

    #[test]
    fn qwen2_vl_grids_of_the_fixture_runs() {
        // qwen2_vl_image manifests (factor 28, min 56x56): defaults, max 256 x 28^2, max 64 x 28^2.
        let max = [28 * 28 * 1280, 256 * 28 * 28, 64 * 28 * 28];
        let want = [
            [(300, 451), (308, 448), (308, 448), (168, 252)],
            [(400, 600), (392, 588), (364, 532), (168, 252)],
            [(512, 512), (504, 504), (448, 448), (224, 224)],
            [(480, 640), (476, 644), (364, 504), (168, 252)],
            [(720, 1280), (728, 1288), (336, 588), (168, 280)],
        ];
        for row in want {
            let (h, w) = row[0];
            for (m, &out) in max.iter().zip(&row[1..]) {
                assert_eq!(
                    smart_resize_pixels(h, w, 28, 3136, *m),
                    Some(out),
                    "{h}x{w} max {m}"
                );
            }
        }
        // Small images grow to min_pixels; an aspect ratio over 200 is refused.
        assert_eq!(
            smart_resize_pixels(10, 10, 28, 3136, 1 << 20),
            Some((56, 56))
        );
        assert_eq!(smart_resize_pixels(1, 201, 28, 3136, 1 << 20), None);
        assert_eq!(
            smart_resize_pixels(1, 200, 28, 3136, 1 << 20),
            Some((28, 812))
        );
    }
}
