//! All end-to-end and conformance tests of flint-tests, linked into one test binary: one link per target
//! instead of one per file, and a tenth of the disk (CI cross-builds all of it for aarch64 as well).
//! Run one file's tests with `cargo test -p flint-tests --test e2e <module>::`.

mod bad_input;
mod cli_escalate;
mod cli_info;
mod cli_logits;
mod cli_multimodal;
mod cli_overlay;
mod conformance;
mod constrained;
mod engine_examples;
mod engine_live;
mod expert_paging;
mod fuzz_corpus;
mod gguf_quants;
mod glasses;
mod hostile;
mod import_muse;
mod kv_paging;
mod muse_audio;
mod muse_audio_files;
mod muse_vision;
mod omni_video;
mod quantize;
mod quantize_calib;
mod qwen2_5_omni;
mod qwen3_omni;
mod qwen3_vl;
mod real_gemma;
mod real_qwen;
mod real_smollm2;
mod serve_openai;
