//! Muse Spark's audio tower against transformers (hf/muse_spark): imported from the fixture, run on the feature
//! extractor's `input_values` + `input_values_mask`, each pyramid layer, the tower output and the embedding rows
//! scattered into `inputs_embeds` within 1e-4 of the reference's largest magnitude, and the decoder's logits with
//! those rows in the prompt; streaming (`in.stream_input_values`, 12 tokens): whole equals `out.stream_full`,
//! chunks of 5+7 and 1+4+7 tokens equal `out.stream_chunked_*`, and splits that are not token multiples equal the
//! whole run; bad audio configs and bad inputs are refused with errors naming the field. The file side and real
//! inputs are in muse_audio_files.rs.

use flint_kernels::Exec;
use flint_model::{AudioTower, Batch, KvDtype, KvOptions, Logits, Model, Trace};
use flint_tests::audio::{assert_close, edited, fixture, Taps};
use flint_tests::Ref;
use std::collections::HashMap;
use std::path::Path;

const TOL: f32 = 1e-4;
/// `<|audio|>` in the fixture's stand-in vocabulary (manifest `inputs_how`).
const AUDIO_ID: u32 = 5;

/// The embedding rows of the prompt's `<|audio|>` placeholders in the reference's merged `inputs_embeds`.
fn placeholder_rows(io: &HashMap<String, Ref>, h: usize) -> (Vec<usize>, Vec<f32>) {
    let ids = &io["in.input_ids"].data;
    let embeds = &io["out.tap.lm.inputs_embeds"].data;
    let pos: Vec<usize> = (0..ids.len())
        .filter(|&t| ids[t] as u32 == AUDIO_ID)
        .collect();
    let rows = pos
        .iter()
        .flat_map(|&t| embeds[t * h..(t + 1) * h].iter().copied())
        .collect();
    (pos, rows)
}

#[test]
fn tower_stages_and_embeddings_match_transformers() {
    let f = fixture();
    let cfg = f.tower.config();
    assert_eq!(cfg.samples_per_token(), 24);
    let x = &f.io["in.input_values"].data;
    let valid = f.io["in.input_values_mask"].data.iter().sum::<f32>() as usize;
    assert_eq!((x.len(), valid), (168, 160));
    let mut taps = Taps::default();
    let emb = f
        .tower
        .encode_traced(&Exec::global(), x, valid, &mut taps.tap())
        .unwrap();
    for i in 0..cfg.layers() {
        let key = format!("audio_layer{i}");
        let e = assert_close(
            &key,
            &taps.0[&key],
            &f.io[&format!("out.tap.{key}")].data,
            TOL,
        );
        eprintln!("{key}: {e:e}");
    }
    let e = assert_close(
        "tower output",
        &taps.0["audio_tower"],
        &f.io["out.tap.audio_tower.last_hidden_state"].data,
        TOL,
    );
    eprintln!("audio_tower: {e:e}");
    let h = cfg.out_size;
    let (pos, want) = placeholder_rows(&f.io, h);
    assert_eq!(pos.len(), cfg.tokens_for(valid));
    let e = assert_close("audio rows of inputs_embeds", &emb, &want, TOL);
    eprintln!("inputs_embeds audio rows: {e:e}");
}

/// The decoder on the fixture's prompt with the audio placeholders replaced by the tower's rows (the image rows
/// are the reference's own): logits as transformers'.
#[test]
fn decoder_with_tower_rows_matches_logits() {
    let f = fixture();
    let model = Model::open(&f.flint).unwrap();
    let h = model.config.hidden_size;
    let x = &f.io["in.input_values"].data;
    let valid = f.io["in.input_values_mask"].data.iter().sum::<f32>() as usize;
    let audio = f.tower.encode(&Exec::global(), x, valid).unwrap();
    let ids: Vec<u32> = f.io["in.input_ids"]
        .data
        .iter()
        .map(|&v| v as u32)
        .collect();
    let embeds = &f.io["out.tap.lm.inputs_embeds"].data;
    let mut kv = model.new_kv(KvOptions::with_dtype(KvDtype::F32));
    let seq = kv.new_seq();
    let mut batch = Batch::new();
    let mut next_audio = audio.chunks_exact(h);
    for (t, &id) in ids.iter().enumerate() {
        match id {
            AUDIO_ID => batch.push_embeds(seq, t, next_audio.next().unwrap(), h, Logits::All),
            3 | 4 => batch.push_embeds(seq, t, &embeds[t * h..(t + 1) * h], h, Logits::All),
            _ => batch.push_text(seq, t, &[id], Logits::All),
        }
    }
    assert!(
        next_audio.next().is_none(),
        "every audio row has a placeholder"
    );
    let mut trace = Trace::default();
    let logits = model
        .forward_batch(&batch, &mut kv, None, Some(&mut trace))
        .unwrap();
    let e = assert_close("logits", &logits, &f.io["out.logits"].data, TOL);
    eprintln!("logits with tower rows: {e:e}");
}

/// Pushes `x` in pieces of `sizes` samples; returns the embedding rows and the tower's own output rows.
fn streamed(tower: &AudioTower, x: &[f32], sizes: &[usize]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(sizes.iter().sum::<usize>(), x.len());
    let spt = tower.config().samples_per_token();
    let exec = Exec::global();
    let mut s = tower.stream(&exec);
    let mut taps = Taps::default();
    let (mut rows, mut at) = (Vec::new(), 0);
    for &n in sizes {
        let got = s.push_traced(&x[at..at + n], &mut taps.tap()).unwrap();
        at += n;
        // Every complete token is out as soon as its last sample is in; only a partial one is held back.
        assert_eq!(s.tokens(), at / spt);
        assert_eq!(s.pending(), at % spt);
        assert_eq!(got.len() % tower.config().out_size, 0);
        rows.extend(got);
    }
    rows.extend(s.finish_traced(x.len(), &mut taps.tap()).unwrap());
    (rows, taps.0.remove("audio_tower").unwrap_or_default())
}

#[test]
fn streaming_equals_whole() {
    let f = fixture();
    let x = &f.io["in.stream_input_values"].data;
    let spt = f.tower.config().samples_per_token();
    assert_eq!(x.len(), 12 * spt);
    let mut taps = Taps::default();
    let whole = f
        .tower
        .encode_traced(&Exec::global(), x, x.len(), &mut taps.tap())
        .unwrap();
    let full = &taps.0["audio_tower"];
    let e = assert_close("stream_full", full, &f.io["out.stream_full"].data, TOL);
    eprintln!("stream_full: {e:e}");
    for split in [&[5usize, 7][..], &[1, 4, 7]] {
        let tag = split
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("_");
        let sizes: Vec<usize> = split.iter().map(|n| n * spt).collect();
        let (rows, tower_rows) = streamed(&f.tower, x, &sizes);
        let want = &f.io[&format!("out.stream_chunked_{tag}")].data;
        let e = assert_close(&format!("stream_chunked_{tag}"), &tower_rows, want, TOL);
        eprintln!("stream_chunked_{tag}: {e:e}");
        // Against our own whole run: the same within float rounding of a different chunking.
        assert_close(&format!("{tag} vs whole"), &tower_rows, full, 1e-5);
        assert_close(&format!("{tag} embeddings vs whole"), &rows, &whole, 1e-5);
    }
    // Splits in samples that are not token multiples, single samples and an empty push included.
    for sizes in [
        vec![7, 50, 1, 0, 100, 130],
        vec![23, 25, 1, 1, 1, 237],
        vec![288],
    ] {
        let (rows, tower_rows) = streamed(&f.tower, x, &sizes);
        assert_close(&format!("{sizes:?} vs whole"), &tower_rows, full, 1e-5);
        assert_close(&format!("{sizes:?} embeddings"), &rows, &whole, 1e-5);
    }
}

/// The clip of the main fixture streamed as raw samples (160, not a token multiple): `finish` pads the last
/// token as the feature extractor does, and the rows equal the reference's placeholders.
#[test]
fn stream_tail_is_padded_like_the_extractor() {
    let f = fixture();
    let x = &f.io["in.input_values"].data[..160];
    let (rows, _) = streamed(&f.tower, x, &[10, 40, 100, 10]);
    let (_, want) = placeholder_rows(&f.io, f.tower.config().out_size);
    assert_close("streamed clip", &rows, &want, TOL);
    // encode of the unpadded clip pads the same way.
    let enc = f.tower.encode(&Exec::global(), x, 160).unwrap();
    assert_close("unpadded encode", &enc, &want, TOL);
}

/// Right padding past `ceil(valid / samples_per_token)` tokens is dropped, as `get_audio_features` drops it.
#[test]
fn tokens_past_the_mask_are_dropped() {
    let f = fixture();
    let x = &f.io["in.stream_input_values"].data;
    let exec = Exec::global();
    let five = f.tower.encode(&exec, &x[..5 * 24], 5 * 24).unwrap();
    for valid in [4 * 24 + 1, 5 * 24] {
        let got = f.tower.encode(&exec, x, valid).unwrap();
        assert_eq!(got.len(), 5 * 64, "valid {valid}");
        assert_close("masked clip", &got, &five, 1e-5);
    }
    // A stream that has already returned tokens past the valid ones says so.
    let mut s = f.tower.stream(&exec);
    s.push(x).unwrap();
    let e = s.finish(100).unwrap_err().to_string();
    assert!(e.contains("12 tokens") && e.contains("100 valid"), "{e}");
}

#[test]
fn bad_inputs_are_errors() {
    let f = fixture();
    let exec = Exec::global();
    let err = |r: Result<Vec<f32>, flint_model::ModelError>| r.unwrap_err().to_string();
    assert!(err(f.tower.encode(&exec, &[], 0)).contains("no samples"));
    assert!(err(f.tower.encode(&exec, &[0.0; 24], 0)).contains("no samples"));
    assert!(err(f.tower.encode(&exec, &[0.0; 24], 25)).contains("25 valid"));
    let mut nan = vec![0.0f32; 48];
    nan[30] = f32::NAN;
    assert!(err(f.tower.encode(&exec, &nan, 48)).contains("sample 30 is NaN"));
    let long = vec![0.0f32; flint_model::config::limits::MAX_AUDIO_SAMPLES + 1];
    assert!(err(f.tower.encode(&exec, &long, long.len())).contains("exceed the cap"));
    let mut s = f.tower.stream(&exec);
    s.push(&[0.0; 30]).unwrap();
    assert!(err(s.finish(31)).contains("31 valid samples of 30 pushed"));
}

fn import_error(dir: &Path) -> String {
    flint_quantize::import::open(dir)
        .map(|_| ())
        .expect_err("the import should be refused")
        .to_string()
}

#[test]
fn bad_audio_configs_are_refused() {
    use serde_json::json;
    let cases: [(&str, serde_json::Value, &[&str]); 9] = [
        (
            "patch_sizes",
            json!([4, 3]),
            &["audio_config.patch_sizes", "2 entries"],
        ),
        (
            "depths",
            json!("1,2,1"),
            &["audio_config.depths", "not a list"],
        ),
        (
            "hidden_sizes",
            json!([16, -24, 32]),
            &["audio_config.hidden_sizes", "-24"],
        ),
        (
            "conv_kernel_size",
            json!(1u64 << 40),
            &["audio_config.conv_kernel_size", "cap"],
        ),
        (
            "hidden_act",
            json!("relu"),
            &["audio_config.hidden_act", "relu"],
        ),
        ("mlp_ratio", json!(0.0), &["audio_config.mlp_ratio"]),
        (
            "rms_norm_eps",
            json!("1e-6"),
            &["audio_config.rms_norm_eps"],
        ),
        (
            "out_hidden_size",
            json!(32),
            &["audio.out_size", "hidden_size"],
        ),
        (
            "patch_sizes",
            json!([4096, 4096, 2]),
            &["audio.patch_sizes", "cap"],
        ),
    ];
    for (key, val, words) in cases {
        let dir = edited(|v| v["audio_config"][key] = val);
        let e = import_error(dir.path());
        for w in words {
            assert!(e.contains(w), "{key}: error does not name {w:?}: {e}");
        }
        assert!(
            e.contains("config.json"),
            "{key}: error does not name the file: {e}"
        );
    }
    let dir = edited(|v| v["audio_token_id"] = json!(512));
    let e = import_error(dir.path());
    assert!(e.contains("audio.token_id") && e.contains("512"), "{e}");
    // Fewer blocks than the checkpoint has: the tower is no longer skipped, so the unread block is an error.
    let dir = edited(|v| v["audio_config"]["depths"] = json!([1, 1, 1]));
    let e = import_error(dir.path());
    assert!(
        e.contains("model.audio_tower.layers.1.conv_blocks.1.") && e.contains("not used"),
        "{e}"
    );
    // Layers that do not match the tensors: the plan names the tensor.
    let dir = edited(|v| v["audio_config"]["conv_kernel_size"] = json!(3));
    let e = import_error(dir.path());
    assert!(
        e.contains("model.audio_tower.layers.0.conv_blocks.0.conv.weight"),
        "{e}"
    );
}
