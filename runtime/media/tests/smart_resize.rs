//! `smart_resize` against transformers' own python (tests/data/smart_resize.tsv, written by
//! tests/data/gen_smart_resize.py, which runs the function taken from the reference source): 4375 sizes, patch
//! sizes and token caps, 23 of which are ties that python breaks by its set's iteration order.

use flint_media::smart_resize;

#[test]
fn equals_the_python_on_every_row() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smart_resize.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut n = 0;
    for line in text.lines().skip(1) {
        let v: Vec<usize> = line.split('\t').map(|s| s.parse().unwrap()).collect();
        let got = smart_resize(v[0], v[1], v[2], v[3]);
        assert_eq!(
            got,
            (v[4], v[5]),
            "smart_resize({}, {}, {}, {})",
            v[0],
            v[1],
            v[2],
            v[3]
        );
        n += 1;
    }
    assert_eq!(n, 4375);
}
