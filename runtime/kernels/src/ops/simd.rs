//! The SIMD bodies of the element- and row-wise ops, written once over a small vector vocabulary and expanded
//! per ISA by [`simd_ops!`] (`x86_avx2.rs`: 8 lanes, `arm_neon.rs`: 4 lanes).
//!
//! Each ISA file defines, as safe `#[target_feature]` functions: `V` (vector), `M` (lane mask), `L` (lanes),
//! `splat`, `load` / `store` (first `L` values of a slice), `add`, `sub`, `mul`, `div`, `fma(a, b, c) = a * b + c`,
//! `max`, `min`, `lt`, `gt`, `select(m, a, b)` (a where m), `hsum`, `hmax`, `round` (nearest, ties to even),
//! `pow2i(n)` (2^n for integral `n` in -126..=127), `abs`, `copysign(mag, sign)`.
//!
//! Tails shorter than `L` go through a padded stack buffer, so every element (tail included) takes the vector
//! formula: results do not depend on where an element sits in the slice. The pad value is chosen per op so padded
//! lanes are neutral (0 for sums, -inf for a max, the mean for a centred sum of squares).

/// Defines each `fn name(args) -> ret = body;` as an `#[inline]` safe `#[target_feature($feat)]` function: the
/// ISA files' vocabulary, one line a primitive.
macro_rules! vocab {
    ($feat:literal; $(fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $e:expr;)*) => {
        $(
            #[inline]
            #[target_feature(enable = $feat)]
            fn $name($($a: $t),*) -> $r {
                $e
            }
        )*
    };
}
pub(crate) use vocab;

macro_rules! simd_ops {
    ($feat:literal) => {
        use crate::ops::RmsWeight;

        /// `x[i] = f(x[i], aux[0][i], ...)` for every `i`; `pad` fills the tail lanes of `x` (aux tails get 0).
        #[inline]
        #[target_feature(enable = $feat)]
        fn map<const K: usize>(
            x: &mut [f32],
            pad: f32,
            aux: [&[f32]; K],
            mut f: impl FnMut(V, [V; K]) -> V,
        ) {
            for a in &aux {
                assert!(
                    a.len() == x.len(),
                    "aux of {} for {} values",
                    a.len(),
                    x.len()
                );
            }
            let body = x.len() / L * L;
            let mut i = 0;
            while i < body {
                let av: [V; K] = core::array::from_fn(|k| load(&aux[k][i..]));
                let v = f(load(&x[i..]), av);
                store(&mut x[i..], v);
                i += L;
            }
            let n = x.len() - body;
            if n > 0 {
                let mut buf = [pad; L];
                buf[..n].copy_from_slice(&x[body..]);
                let av: [V; K] = core::array::from_fn(|k| {
                    let mut b = [0f32; L];
                    b[..n].copy_from_slice(&aux[k][body..]);
                    load(&b)
                });
                let v = f(load(&buf), av);
                store(&mut buf, v);
                x[body..].copy_from_slice(&buf[..n]);
            }
        }

        /// Folds `f(acc, x[i..i + L])` over `x` from `init`; `pad` fills the tail lanes.
        #[inline]
        #[target_feature(enable = $feat)]
        fn fold(x: &[f32], pad: f32, init: V, mut f: impl FnMut(V, V) -> V) -> V {
            let mut acc = init;
            let mut chunks = x.chunks_exact(L);
            for c in &mut chunks {
                acc = f(acc, load(c));
            }
            let r = chunks.remainder();
            if !r.is_empty() {
                let mut buf = [pad; L];
                buf[..r.len()].copy_from_slice(r);
                acc = f(acc, load(&buf));
            }
            acc
        }

        /// e^x, Cephes `expf` reduction and polynomial (<= 2 ulp on the normal range); 2^n is applied as two
        /// factors so n = 128 (x near ln f32::MAX) and gradual underflow stay exact. +inf above ln f32::MAX,
        /// 0 below -104 (where e^x is under half the smallest subnormal).
        #[inline]
        #[target_feature(enable = $feat)]
        pub(crate) fn exp_v(x0: V) -> V {
            let x = min(max(x0, splat(-104.0)), splat(88.722_83));
            let n = round(mul(x, splat(core::f32::consts::LOG2_E)));
            let r = fma(n, splat(-0.693_359_4), x);
            let r = fma(n, splat(2.121_944_4e-4), r);
            let mut y = splat(1.987_569_1e-4);
            for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
                y = fma(y, r, splat(c));
            }
            let y = fma(y, mul(r, r), add(r, splat(1.0)));
            let n1 = round(mul(n, splat(0.5)));
            let y = mul(mul(y, pow2i(n1)), pow2i(sub(n, n1)));
            let y = select(lt(x0, splat(-104.0)), splat(0.0), y);
            select(gt(x0, splat(88.722_83)), splat(f32::INFINITY), y)
        }

        /// Horner evaluation of `c[0] + z * (c[1] + z * (...))`.
        #[inline]
        #[target_feature(enable = $feat)]
        fn poly(z: V, c: &[f32]) -> V {
            let mut y = splat(c[c.len() - 1]);
            for &k in c[..c.len() - 1].iter().rev() {
                y = fma(y, z, splat(k));
            }
            y
        }

        /// erf, the fdlibm `erff` rational approximations of [`crate::ops::erf`] evaluated for every lane and
        /// blended by range. Each lane's numerator and denominator are selected before one shared division
        /// (divisions are the slow part). The tail uses one `exp` of `-x^2 - 0.5625 + R/S` (with `x^2` by FMA)
        /// instead of fdlibm's split into two exps: that split keeps erfc accurate; for erf the error it saves is
        /// below erfc(x) * 2e-6, i.e. under 2e-8.
        #[inline]
        #[target_feature(enable = $feat)]
        pub(crate) fn erf_v(x: V) -> V {
            use crate::ops::act::erf_coef as c;
            let a = abs(x);
            let z = mul(a, a);
            let (small, mid, tail) = (
                lt(a, splat(0.84375)),
                lt(a, splat(1.25)),
                lt(a, splat(1.0 / 0.35)),
            );
            let s = sub(a, splat(1.0));
            let t = div(splat(1.0), z);
            // Select small over mid over the two erfc tails, for the numerator and the denominator.
            let num = select(tail, poly(t, &c::RA), poly(t, &c::RB));
            let num = select(small, poly(z, &c::PP), select(mid, poly(s, &c::PA), num));
            let den = select(tail, poly(t, &c::SA), poly(t, &c::SB));
            let den = select(small, poly(z, &c::QQ), select(mid, poly(s, &c::QA), den));
            let r = div(num, den);
            let e = exp_v(add(fma(sub(splat(0.0), a), a, splat(-0.5625)), r));
            let y = select(lt(a, splat(6.0)), sub(splat(1.0), div(e, a)), splat(1.0));
            let y = select(mid, add(splat(c::ERX), r), y);
            let y = select(small, fma(a, r, a), y);
            copysign(y, x)
        }

        /// `x / (1 + e^(-k x))` = `x * sigmoid(k x)`, one division; e^(-kx) = inf gives -0 or 0, not NaN.
        #[inline]
        #[target_feature(enable = $feat)]
        fn x_sigmoid(x: V, kx: V) -> V {
            div(x, add(splat(1.0), exp_v(sub(splat(0.0), kx))))
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn sigmoid(x: &mut [f32]) {
            map(x, 0.0, [], |v, _| x_sigmoid(splat(1.0), v));
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn silu(x: &mut [f32]) {
            map(x, 0.0, [], |v, _| x_sigmoid(v, v));
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn quick_gelu(x: &mut [f32]) {
            map(x, 0.0, [], |v, _| x_sigmoid(v, mul(splat(1.702), v)));
        }

        /// `0.5 x (1 + tanh(u)) = x * sigmoid(2u)`: the sigmoid form has no cancellation at `tanh(u) ~ -1`.
        #[target_feature(enable = $feat)]
        pub(crate) fn gelu_tanh(x: &mut [f32]) {
            use crate::ops::act::{GELU_C, SQRT_2_OVER_PI};
            map(x, 0.0, [], |v, _| {
                let u = mul(
                    splat(SQRT_2_OVER_PI),
                    fma(mul(splat(GELU_C), v), mul(v, v), v),
                );
                x_sigmoid(v, add(u, u))
            });
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn gelu_erf(x: &mut [f32]) {
            map(x, 0.0, [], |v, _| {
                let e = erf_v(mul(v, splat(core::f32::consts::FRAC_1_SQRT_2)));
                mul(mul(splat(0.5), v), add(splat(1.0), e))
            });
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn softmax_row(x: &mut [f32]) {
            let m = splat(hmax(fold(
                x,
                f32::NEG_INFINITY,
                splat(f32::NEG_INFINITY),
                |a, v| max(a, v),
            )));
            let mut sum = splat(0.0);
            // Padded lanes hold -inf, so they add e^-inf = 0.
            map(x, f32::NEG_INFINITY, [], |v, _| {
                let e = exp_v(sub(v, m));
                sum = add(sum, e);
                e
            });
            let inv = splat(1.0 / hsum(sum));
            map(x, 0.0, [], |v, _| mul(v, inv));
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn layer_norm_row(x: &mut [f32], w: &[f32], b: Option<&[f32]>, eps: f32) {
            let d = x.len() as f32;
            let mean = hsum(fold(x, 0.0, splat(0.0), |a, v| add(a, v))) / d;
            let m = splat(mean);
            let var = hsum(fold(x, mean, splat(0.0), |acc, v| {
                let c = sub(v, m);
                fma(c, c, acc)
            })) / d;
            let r = splat(1.0 / (var + eps).sqrt());
            match b {
                Some(b) => map(x, 0.0, [w, b], |v, [w, b]| fma(mul(sub(v, m), r), w, b)),
                None => map(x, 0.0, [w], |v, [w]| mul(mul(sub(v, m), r), w)),
            }
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn rms_norm_row(x: &mut [f32], scale: RmsWeight<'_>, eps: f32) {
            let one = splat(1.0);
            if let RmsWeight::InputScaled(w) = scale {
                map(x, 0.0, [w], |v, [w]| mul(v, add(one, w)));
            }
            let ms = hsum(fold(x, 0.0, splat(0.0), |acc, v| fma(v, v, acc))) / x.len() as f32;
            let r = splat(1.0 / (ms + eps).sqrt());
            match scale {
                RmsWeight::Plain(w) => map(x, 0.0, [w], |v, [w]| mul(mul(v, r), w)),
                RmsWeight::Centered(w) => map(x, 0.0, [w], |v, [w]| mul(mul(v, r), add(one, w))),
                RmsWeight::None | RmsWeight::InputScaled(_) => map(x, 0.0, [], |v, _| mul(v, r)),
            }
        }

        /// One head: `(a, b) <- (a cos - b sin, b cos + a sin)` on its two halves.
        #[target_feature(enable = $feat)]
        pub(crate) fn rope_head(a: &mut [f32], b: &mut [f32], cos: &[f32], sin: &[f32]) {
            let h = a.len();
            assert!(b.len() == h && cos.len() == h && sin.len() == h);
            let step = |a: &mut [f32], b: &mut [f32], c: &[f32], s: &[f32]| {
                let (va, vb, vc, vs) = (load(a), load(b), load(c), load(s));
                store(a, sub(mul(va, vc), mul(vb, vs)));
                store(b, fma(va, vs, mul(vb, vc)));
            };
            let body = h / L * L;
            let mut i = 0;
            while i < body {
                step(&mut a[i..], &mut b[i..], &cos[i..], &sin[i..]);
                i += L;
            }
            if body < h {
                let n = h - body;
                let mut buf = [[0f32; L]; 4];
                for (dst, src) in
                    buf.iter_mut()
                        .zip([&a[body..], &b[body..], &cos[body..], &sin[body..]])
                {
                    dst[..n].copy_from_slice(src);
                }
                let [mut ta, mut tb, tc, ts] = buf;
                step(&mut ta, &mut tb, &tc, &ts);
                a[body..].copy_from_slice(&ta[..n]);
                b[body..].copy_from_slice(&tb[..n]);
            }
        }
    };
}
pub(crate) use simd_ops;
