//! Character classes: sets of Unicode scalar values (code points that UTF-8 can encode: not surrogates).

/// Highest code point.
pub(crate) const MAX_CP: u32 = 0x10FFFF;
const SUR_LO: u32 = 0xD800;
const SUR_HI: u32 = 0xDFFF;

/// A set of scalar values as sorted, disjoint, non-adjacent inclusive ranges that never contain a surrogate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Class {
    ranges: Vec<(u32, u32)>,
    ascii: [u64; 2],
}

/// How much of a code point interval a class holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coverage {
    None,
    Some,
    All,
}

impl Class {
    /// The class of the given ranges (any order, overlapping allowed; reversed ranges and surrogates are dropped).
    pub(crate) fn from_ranges(mut input: Vec<(u32, u32)>) -> Class {
        input.retain(|&(a, b)| a <= b && a <= MAX_CP);
        input.sort_unstable();
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(input.len());
        for (a, b) in input {
            let b = b.min(MAX_CP);
            // Split around the surrogate block.
            let pieces = [(a, b.min(SUR_LO - 1)), (a.max(SUR_HI + 1), b)];
            for (a, b) in pieces {
                if a > b {
                    continue;
                }
                match ranges.last_mut() {
                    Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                    _ => ranges.push((a, b)),
                }
            }
        }
        let mut ascii = [0u64; 2];
        for &(a, b) in &ranges {
            for c in a..=b.min(127) {
                ascii[(c >> 6) as usize] |= 1 << (c & 63);
            }
        }
        Class { ranges, ascii }
    }

    pub(crate) fn single(c: u32) -> Class {
        Class::from_ranges(vec![(c, c)])
    }

    /// Every scalar value (`.`).
    pub(crate) fn any() -> Class {
        Class::from_ranges(vec![(0, MAX_CP)])
    }

    pub(crate) fn negate(&self) -> Class {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0u32;
        for &(a, b) in &self.ranges {
            if a > next {
                out.push((next, a - 1));
            }
            next = b + 1;
        }
        if next <= MAX_CP {
            out.push((next, MAX_CP));
        }
        Class::from_ranges(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(crate) fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// The one code point of a single-character class.
    pub(crate) fn as_single(&self) -> Option<u32> {
        match self.ranges.as_slice() {
            [(a, b)] if a == b => Some(*a),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn contains(&self, cp: u32) -> bool {
        if cp < 128 {
            return self.ascii[(cp >> 6) as usize] & (1 << (cp & 63)) != 0;
        }
        let i = self.ranges.partition_point(|&(_, b)| b < cp);
        i < self.ranges.len() && self.ranges[i].0 <= cp
    }

    /// How much of the scalar values in `lo..=hi` the class holds.
    pub(crate) fn coverage(&self, lo: u32, hi: u32) -> Coverage {
        let valid = scalar_count(lo, hi);
        if valid == 0 {
            return Coverage::None;
        }
        let mut held = 0u64;
        let start = self.ranges.partition_point(|&(_, b)| b < lo);
        for &(a, b) in &self.ranges[start..] {
            if a > hi {
                break;
            }
            held += scalar_count(a.max(lo), b.min(hi));
        }
        if held == 0 {
            Coverage::None
        } else if held == valid {
            Coverage::All
        } else {
            Coverage::Some
        }
    }
}

/// Scalar values (non-surrogates) in `lo..=hi`.
fn scalar_count(lo: u32, hi: u32) -> u64 {
    if lo > hi {
        return 0;
    }
    let all = u64::from(hi - lo) + 1;
    let (a, b) = (lo.max(SUR_LO), hi.min(SUR_HI));
    all - if a <= b { u64::from(b - a) + 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_negates() {
        let c = Class::from_ranges(vec![
            (b'c' as u32, b'e' as u32),
            (b'a' as u32, b'c' as u32),
            (0xD000, 0xE100),
        ]);
        assert_eq!(c.ranges(), &[(97, 101), (0xD000, 0xD7FF), (0xE000, 0xE100)]);
        assert!(
            c.contains('b' as u32)
                && !c.contains('f' as u32)
                && c.contains(0xE000)
                && !c.contains(0xD800)
        );
        let n = c.negate();
        assert!(
            !n.contains('b' as u32)
                && n.contains('f' as u32)
                && !n.contains(0xD800)
                && n.contains(0x10FFFF)
        );
        assert_eq!(n.negate(), c);
        assert_eq!(Class::any().negate().ranges(), &[]);
        assert_eq!(Class::any().ranges(), &[(0, 0xD7FF), (0xE000, MAX_CP)]);
    }

    #[test]
    fn coverage_ignores_surrogates() {
        let c = Class::from_ranges(vec![(0x20, MAX_CP)]);
        assert_eq!(c.coverage(0xD000, 0xDFFF), Coverage::All);
        assert_eq!(c.coverage(0, 0x7F), Coverage::Some);
        assert_eq!(c.coverage(0xD800, 0xDFFF), Coverage::None);
        assert_eq!(Class::single(0x41).coverage(0x80, 0x7FF), Coverage::None);
    }
}
