//! Plane geometry for the DB post-processing: convex hull, minimum-area rectangle (as OpenCV's
//! `minAreaRect` + `boxPoints`), the corner ordering RapidOCR applies, polygon offsetting ("unclip") and
//! convex-polygon scanlines.

/// A point, x right, y down.
pub type Pt = [f64; 2];

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame, collinear points dropped.
pub fn convex_hull(points: &[Pt]) -> Vec<Pt> {
    let mut p: Vec<Pt> = points
        .iter()
        .copied()
        .filter(|q| q[0].is_finite() && q[1].is_finite())
        .collect();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<Pt> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Pt>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// The minimum-area enclosing rectangle of `points`: its four corners and its shorter side. Degenerate input
/// (fewer than three non-collinear points) gives a zero short side.
pub fn min_area_rect(points: &[Pt]) -> ([Pt; 4], f64) {
    let hull = convex_hull(points);
    if hull.len() < 3 {
        let a = hull.first().copied().unwrap_or([0.0, 0.0]);
        let b = hull.last().copied().unwrap_or(a);
        return ([a, b, b, a], 0.0);
    }
    let mut best: Option<(f64, [Pt; 4], f64)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        let v = [-u[1], u[0]];
        let (mut lo_u, mut hi_u, mut lo_v, mut hi_v) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for q in &hull {
            let du = (q[0] - a[0]) * u[0] + (q[1] - a[1]) * u[1];
            let dv = (q[0] - a[0]) * v[0] + (q[1] - a[1]) * v[1];
            lo_u = lo_u.min(du);
            hi_u = hi_u.max(du);
            lo_v = lo_v.min(dv);
            hi_v = hi_v.max(dv);
        }
        let area = (hi_u - lo_u) * (hi_v - lo_v);
        if best.as_ref().is_none_or(|(b_area, _, _)| area < *b_area) {
            let at =
                |su: f64, sv: f64| [a[0] + u[0] * su + v[0] * sv, a[1] + u[1] * su + v[1] * sv];
            let corners = [
                at(lo_u, lo_v),
                at(hi_u, lo_v),
                at(hi_u, hi_v),
                at(lo_u, hi_v),
            ];
            best = Some((area, corners, (hi_u - lo_u).min(hi_v - lo_v)));
        }
    }
    match best {
        Some((_, c, s)) => (c, s),
        None => ([hull[0]; 4], 0.0),
    }
}

/// RapidOCR's `get_mini_boxes`: the minimum-area rectangle of `points`, corners ordered top-left, top-right,
/// bottom-right, bottom-left, and its shorter side.
pub fn mini_box(points: &[Pt]) -> ([Pt; 4], f64) {
    let (mut c, side) = min_area_rect(points);
    c.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if c[1][1] > c[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if c[3][1] > c[2][1] { (2, 3) } else { (3, 2) };
    ([c[i1], c[i2], c[i3], c[i4]], side)
}

/// Shoelace area (absolute) and perimeter of a polygon.
pub fn area_perimeter(poly: &[Pt]) -> (f64, f64) {
    let n = poly.len();
    let (mut a2, mut per) = (0.0, 0.0);
    for i in 0..n {
        let p = poly[i];
        let q = poly[(i + 1) % n];
        a2 += p[0] * q[1] - q[0] * p[1];
        per += ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)).sqrt();
    }
    ((a2 / 2.0).abs(), per)
}

/// DB's "unclip": grows the convex quad `box4` outwards by `area * ratio / perimeter` (computed on the float
/// corners, as shapely does) around its corners truncated to integers (as pyclipper takes them). Returns the
/// offset polygon's vertices (edge end points pushed along the outward normals, rounded like pyclipper's
/// integer output); its minimum-area rectangle equals that of pyclipper's round-joined offset.
pub fn unclip(box4: &[Pt; 4], ratio: f64) -> Vec<Pt> {
    let (area, per) = area_perimeter(box4);
    if per <= 0.0 {
        return box4.to_vec();
    }
    let d = area * ratio / per;
    let p: Vec<Pt> = box4.iter().map(|q| [q[0].trunc(), q[1].trunc()]).collect();
    let signed: f64 = (0..4)
        .map(|i| p[i][0] * p[(i + 1) % 4][1] - p[(i + 1) % 4][0] * p[i][1])
        .sum();
    let sign = if signed >= 0.0 { 1.0 } else { -1.0 };
    let mut out = Vec::with_capacity(8);
    for i in 0..4 {
        let a = p[i];
        let b = p[(i + 1) % 4];
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        // Outward normal of edge a->b for a polygon of the given orientation (y down).
        let n = [sign * (b[1] - a[1]) / len, -sign * (b[0] - a[0]) / len];
        for q in [a, b] {
            out.push([(q[0] + n[0] * d).round(), (q[1] + n[1] * d).round()]);
        }
    }
    out
}

/// Inclusive pixel range `[x0, x1]` that the convex polygon `poly` covers on row `y`, if any.
pub fn row_span(poly: &[Pt], y: f64) -> Option<(f64, f64)> {
    let n = poly.len();
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for i in 0..n {
        let a = poly[i];
        let b = poly[(i + 1) % n];
        let (ymin, ymax) = (a[1].min(b[1]), a[1].max(b[1]));
        if y < ymin || y > ymax {
            continue;
        }
        if a[1] == b[1] {
            lo = lo.min(a[0].min(b[0]));
            hi = hi.max(a[0].max(b[0]));
        } else {
            let x = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// RapidOCR's `order_points_clockwise`: the two left-most points (by x) become top-left / bottom-left by y,
/// the other two top-right / bottom-right; returned as [tl, tr, br, bl].
pub fn order_clockwise(pts: &[Pt; 4]) -> [Pt; 4] {
    let mut s = *pts;
    s.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (tl, bl) = if s[1][1] < s[0][1] {
        (s[1], s[0])
    } else {
        (s[0], s[1])
    };
    let (tr, br) = if s[3][1] < s[2][1] {
        (s[3], s[2])
    } else {
        (s[2], s[3])
    };
    [tl, tr, br, bl]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_of_axis_aligned_points() {
        let pts = [
            [10.0, 5.0],
            [50.0, 5.0],
            [50.0, 20.0],
            [10.0, 20.0],
            [30.0, 12.0],
        ];
        let (b, side) = mini_box(&pts);
        assert_eq!(side, 15.0);
        assert_eq!(b, [[10.0, 5.0], [50.0, 5.0], [50.0, 20.0], [10.0, 20.0]]);
    }

    #[test]
    fn unclip_grows_rect_evenly() {
        let b = [[10.0, 10.0], [110.0, 10.0], [110.0, 30.0], [10.0, 30.0]];
        // d = 2000 * 1.5 / 240 = 12.5, rounded per vertex.
        let (r, side) = mini_box(&unclip(&b, 1.5));
        assert_eq!(side, 46.0);
        assert_eq!(r[0], [-3.0, -3.0]);
        assert_eq!(r[2], [123.0, 43.0]);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(min_area_rect(&[]).1, 0.0);
        assert_eq!(min_area_rect(&[[1.0, 1.0], [5.0, 1.0], [9.0, 1.0]]).1, 0.0);
        assert!(row_span(&[[0.0, 0.0], [4.0, 0.0], [4.0, 4.0]], 9.0).is_none());
    }
}
