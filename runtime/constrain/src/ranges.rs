//! Exact grammars for bounded integers and numbers in decimal (no leading zeros, no exponent, never `-0`).

use crate::expr::Expr;

fn digit() -> Expr {
    Expr::class(&[('0', '9')])
}

/// Exactly `k` digits.
fn digits_exact(k: usize) -> Expr {
    if k == 0 {
        Expr::empty()
    } else {
        Expr::repeat(digit(), k as u32, Some(k as u32))
    }
}

fn digits_lit(d: &[u8]) -> Expr {
    Expr::lit(std::str::from_utf8(d).unwrap_or_default())
}

fn digit_range(a: u8, b: u8) -> Expr {
    if a == b {
        Expr::lit(&(a as char).to_string())
    } else {
        Expr::class(&[(a as char, b as char)])
    }
}

/// Digit strings of length `a.len() == b.len()` between `a` and `b` inclusive (leading zeros allowed: this is
/// for the digits after a fixed first one).
fn same_len(a: &[u8], b: &[u8]) -> Expr {
    let n = a.len();
    if n == 0 {
        return Expr::empty();
    }
    if a == b {
        return digits_lit(a);
    }
    if a[0] == b[0] {
        return Expr::seq(vec![digit_range(a[0], a[0]), same_len(&a[1..], &b[1..])]);
    }
    let rest_low = a[1..].iter().all(|&d| d == b'0');
    let rest_high = b[1..].iter().all(|&d| d == b'9');
    let free = |lo: u8, hi: u8| Expr::seq(vec![digit_range(lo, hi), digits_exact(n - 1)]);
    let mut alts = Vec::new();
    let lo = if rest_low {
        a[0]
    } else {
        alts.push(Expr::seq(vec![
            digit_range(a[0], a[0]),
            same_len(&a[1..], &vec![b'9'; n - 1]),
        ]));
        a[0] + 1
    };
    let hi = if rest_high { b[0] } else { b[0] - 1 };
    if lo <= hi {
        alts.push(free(lo, hi));
    }
    if !rest_high {
        alts.push(Expr::seq(vec![
            digit_range(b[0], b[0]),
            same_len(&vec![b'0'; n - 1], &b[1..]),
        ]));
    }
    Expr::alt(alts)
}

/// Digits of an integer with no upper bound (as in the generic `integer` rule): it always fits an `i64`.
pub(crate) const MAX_DIGITS: usize = 18;
/// Digits of a fraction.
const MAX_FRACTION: u32 = 32;

/// Decimal integers in `lo..=hi` (`hi: None`: up to [`MAX_DIGITS`] digits), `lo <= hi`.
pub(crate) fn uint_range(lo: u128, hi: Option<u128>) -> Expr {
    let a = lo.to_string().into_bytes();
    let nines = |n: usize| vec![b'9'; n];
    let mut alts = Vec::new();
    match hi {
        Some(hi) => {
            let b = hi.to_string().into_bytes();
            if a.len() == b.len() {
                return same_len(&a, &b);
            }
            alts.push(same_len(&a, &nines(a.len())));
            for len in a.len() + 1..b.len() {
                alts.push(Expr::seq(vec![
                    Expr::class(&[('1', '9')]),
                    digits_exact(len - 1),
                ]));
            }
            let mut low = vec![b'0'; b.len()];
            low[0] = b'1';
            alts.push(same_len(&low, &b));
        }
        None => {
            alts.push(same_len(&a, &nines(a.len())));
            if a.len() < MAX_DIGITS {
                let more = Expr::repeat(digit(), a.len() as u32, Some(MAX_DIGITS as u32 - 1));
                alts.push(Expr::seq(vec![Expr::class(&[('1', '9')]), more]));
            }
        }
    }
    Expr::alt(alts)
}

/// Integers in `lo..=hi` (inclusive, either side open). `None` if there are none.
pub(crate) fn int_range(lo: Option<i128>, hi: Option<i128>) -> Option<Expr> {
    let mut alts = Vec::new();
    let pos_lo = lo.map_or(0, |l| l.max(0));
    if hi.is_none_or(|h| h >= pos_lo) {
        alts.push(uint_range(pos_lo as u128, hi.map(|h| h as u128)));
    }
    let neg_hi = hi.map_or(-1, |h| h.min(-1));
    if lo.is_none_or(|l| l <= neg_hi) {
        alts.push(Expr::seq(vec![
            Expr::lit("-"),
            uint_range((-neg_hi) as u128, lo.map(|l| (-l) as u128)),
        ]));
    }
    (!alts.is_empty()).then(|| Expr::alt(alts))
}

/// A bound: value and whether it is exclusive.
pub(crate) type Bound = (i128, bool);

/// Of two lower bounds, the stricter.
pub(crate) fn stricter_lower(a: Bound, b: Bound) -> Bound {
    if a.0 != b.0 {
        if a.0 > b.0 {
            a
        } else {
            b
        }
    } else {
        (a.0, a.1 || b.1)
    }
}

/// Of two upper bounds, the stricter.
pub(crate) fn stricter_upper(a: Bound, b: Bound) -> Bound {
    if a.0 != b.0 {
        if a.0 < b.0 {
            a
        } else {
            b
        }
    } else {
        (a.0, a.1 || b.1)
    }
}

fn frac_any() -> Expr {
    Expr::opt(Expr::seq(vec![
        Expr::lit("."),
        Expr::repeat(digit(), 1, Some(MAX_FRACTION)),
    ]))
}

fn frac_zero() -> Expr {
    Expr::opt(Expr::seq(vec![
        Expr::lit("."),
        Expr::repeat(Expr::lit("0"), 1, Some(MAX_FRACTION)),
    ]))
}

fn frac_nonzero() -> Expr {
    let zeros = Expr::repeat(Expr::lit("0"), 0, Some(MAX_FRACTION - 1));
    let rest = Expr::repeat(digit(), 0, Some(MAX_FRACTION - 1));
    Expr::seq(vec![
        Expr::lit("."),
        zeros,
        Expr::class(&[('1', '9')]),
        rest,
    ])
}

/// Non-negative decimals `y` (integer part and optional fraction) with the given bounds on `y`.
fn nonneg_number(lower: Option<Bound>, upper: Option<Bound>) -> Option<Expr> {
    // From below: integer parts >= a take any fraction; integer part p (exclusive bound) needs a non-zero one.
    let (a, p) = match lower {
        None => (0, None),
        Some((c, false)) => (c.max(0), None),
        Some((c, true)) if c < 0 => (0, None),
        Some((c, true)) => (c + 1, Some(c)),
    };
    // From above: integer parts <= b take any fraction; integer part z (inclusive bound) only a zero one.
    let (b, z) = match upper {
        None => (None, None),
        Some((c, false)) if c < 0 => return None,
        Some((c, false)) => (Some(c - 1), Some(c)),
        Some((c, true)) if c <= 0 => return None,
        Some((c, true)) => (Some(c - 1), None),
    };
    let mut alts = Vec::new();
    if b.is_none_or(|b| a <= b) {
        alts.push(Expr::seq(vec![
            uint_range(a as u128, b.map(|b| b as u128)),
            frac_any(),
        ]));
    }
    if let Some(p) = p {
        if b.is_none_or(|b| p <= b) {
            alts.push(Expr::seq(vec![Expr::lit(&p.to_string()), frac_nonzero()]));
        }
    }
    if let Some(z) = z {
        if z >= a && Some(z) != p {
            alts.push(Expr::seq(vec![Expr::lit(&z.to_string()), frac_zero()]));
        }
    }
    (!alts.is_empty()).then(|| Expr::alt(alts))
}

/// Decimal numbers (optional fraction, no exponent) within integer bounds. `None` if there are none.
pub(crate) fn number_range(lower: Option<Bound>, upper: Option<Bound>) -> Option<Expr> {
    let mut alts = Vec::new();
    if let Some(e) = nonneg_number(lower, upper) {
        alts.push(e);
    }
    // Negative x = -y with y > 0.
    let mut lower_y = (0, true);
    if let Some((h, ex)) = upper {
        lower_y = stricter_lower(lower_y, (-h, ex));
    }
    let upper_y = lower.map(|(l, ex)| (-l, ex));
    if let Some(e) = nonneg_number(Some(lower_y), upper_y) {
        alts.push(Expr::seq(vec![Expr::lit("-"), e]));
    }
    (!alts.is_empty()).then(|| Expr::alt(alts))
}
