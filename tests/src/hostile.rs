//! Helpers for the hostile-input tests: crafting bad files (a `.flint` with edited metadata and correct CRCs, a
//! GGUF from keys and tensors) and running a binary the way a device would meet it: bounded in time and memory.

use crate::bin_command;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// A child is killed after this long: every hostile input must be refused well inside it.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The child's address-space limit (RLIMIT_AS).
pub const ADDRESS_SPACE: u64 = 3 << 30;

/// Runs one of the workspace's binaries on `args` (with `stdin` piped in, if given) under a 3 GB address-space
/// limit, killing it after [`TIMEOUT`]. Panics if it had to be killed.
pub fn run_limited(name: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut cmd = bin_command(name, args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // qemu-user reserves a large address space for the guest itself, so under FLINT_TEST_RUNNER the limit would
    // stop the emulator, not the binary: there, only the time bound applies.
    if std::env::var_os("FLINT_TEST_RUNNER").is_none() {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit, which is
        // async-signal-safe; it allocates nothing and touches no lock.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                    rlim_max: ADDRESS_SPACE as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let writer = stdin.map(|data| {
        let mut w = child.stdin.take().expect("piped stdin");
        // The child may stop reading early (that is the point); a broken pipe is expected.
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the child") {
            break s;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?}: still running after {TIMEOUT:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Asserts a clean refusal: a failure exit (not 101, the panic code), no "panicked", an `error:` line, and every
/// string of `names` (the file, the field) in the message. Returns stderr.
pub fn assert_refused(out: &Output, what: &str, names: &[&str]) -> String {
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{what}: should fail\n{e}");
    assert_ne!(out.status.code(), Some(101), "{what}: panicked: {e}");
    assert!(
        out.status.code().is_some(),
        "{what}: killed by a signal: {e}"
    );
    assert!(!e.contains("panicked"), "{what}: panicked: {e}");
    assert!(e.contains("error:"), "{what}: unclear error: {e}");
    for n in names {
        assert!(e.contains(n), "{what}: the error does not name `{n}`: {e}");
    }
    e
}

/// Copies the `.flint` at `src` to `dst` with its metadata edited by `edit`: the writer recomputes every CRC, so
/// the result passes the container's checks and reaches the model description's validation.
pub fn rewrite_flint(src: &Path, dst: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let f = flint_format::FlintFile::open(src).expect("a valid source file");
    let mut w = flint_format::Writer::create(dst).expect("create");
    let mut meta = f.metadata().clone();
    edit(&mut meta);
    w.set_metadata(meta);
    let mut group = 0;
    for t in f.tensors() {
        if t.group != group {
            if group != 0 {
                w.end_group();
            }
            if t.group != 0 {
                w.begin_group().expect("group");
            }
            group = t.group;
        }
        let data = &f.bytes()[t.offset..t.offset + t.length];
        w.add(&t.name, t.dtype, &t.shape, data).expect("add");
    }
    if group != 0 {
        w.end_group();
    }
    w.finish().expect("finish");
}

/// A GGUF v3 file under construction: metadata keys, then tensors (F32, GGUF dimension order given fastest first).
#[derive(Debug, Default)]
pub struct Gguf {
    kv: Vec<(String, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, Vec<f32>)>,
}

fn gguf_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

impl Gguf {
    /// A `u32` key (type 4).
    pub fn u32(mut self, k: &str, v: u32) -> Self {
        let mut b = 4u32.to_le_bytes().to_vec();
        b.extend(v.to_le_bytes());
        self.kv.push((k.into(), b));
        self
    }
    /// A `u64` key (type 10).
    pub fn u64(mut self, k: &str, v: u64) -> Self {
        let mut b = 10u32.to_le_bytes().to_vec();
        b.extend(v.to_le_bytes());
        self.kv.push((k.into(), b));
        self
    }
    /// An `f32` key (type 6).
    pub fn f32(mut self, k: &str, v: f32) -> Self {
        let mut b = 6u32.to_le_bytes().to_vec();
        b.extend(v.to_le_bytes());
        self.kv.push((k.into(), b));
        self
    }
    /// A string key (type 8).
    pub fn str(mut self, k: &str, v: &str) -> Self {
        let mut b = 8u32.to_le_bytes().to_vec();
        gguf_str(&mut b, v);
        self.kv.push((k.into(), b));
        self
    }
    /// An array of strings (type 9 of 8).
    pub fn strs(mut self, k: &str, v: &[String]) -> Self {
        let mut b = 9u32.to_le_bytes().to_vec();
        b.extend(8u32.to_le_bytes());
        b.extend((v.len() as u64).to_le_bytes());
        for s in v {
            gguf_str(&mut b, s);
        }
        self.kv.push((k.into(), b));
        self
    }
    /// An F32 tensor; `dims` fastest first, as GGUF stores them.
    pub fn tensor(mut self, name: &str, dims: &[u64], data: Vec<f32>) -> Self {
        self.tensors.push((name.into(), dims.to_vec(), data));
        self
    }
    /// The file's bytes (alignment 32).
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            gguf_str(&mut b, k);
            b.extend(v);
        }
        let mut off = 0u64;
        for (name, dims, data) in &self.tensors {
            gguf_str(&mut b, name);
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(0u32.to_le_bytes());
            b.extend(off.to_le_bytes());
            off += (data.len() as u64 * 4).div_ceil(32) * 32;
        }
        b.resize(b.len().div_ceil(32) * 32, 0);
        for (_, _, data) in &self.tensors {
            let start = b.len();
            b.extend(data.iter().flat_map(|x| x.to_le_bytes()));
            b.resize(start + (b.len() - start).div_ceil(32) * 32, 0);
        }
        b
    }
}

/// A small but complete llama GGUF (2 layers, hidden 64, vocab 32, random-ish weights): valid input the hostile
/// tests damage one key at a time.
pub fn tiny_llama_gguf() -> Gguf {
    llama_gguf(64, 128, 2)
}

/// A complete llama GGUF of hidden size `h` (4 heads, 2 kv heads), feed-forward width `inter` and `layers`
/// layers, vocabulary 32.
pub fn llama_gguf(h: u64, inter: u64, layers: u64) -> Gguf {
    let (heads, kv, vocab) = (4u64, 2u64, 32u64);
    let hd = h / heads;
    let vals = |n: u64| {
        (0..n)
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 500.0)
            .collect()
    };
    let tokens: Vec<String> = (0..vocab).map(|i| format!("t{i}")).collect();
    let mut g = Gguf::default()
        .str("general.architecture", "llama")
        .str("general.name", "tiny")
        .u32("llama.embedding_length", h as u32)
        .u32("llama.attention.head_count", heads as u32)
        .u32("llama.attention.head_count_kv", kv as u32)
        .u32("llama.block_count", layers as u32)
        .u32("llama.feed_forward_length", inter as u32)
        .u32("llama.context_length", 256)
        .f32("llama.rope.freq_base", 10000.0)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", &tokens)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .tensor("token_embd.weight", &[h, vocab], vals(h * vocab))
        .tensor("output_norm.weight", &[h], vec![1.0; h as usize]);
    for l in 0..layers {
        let t = |s: &str| format!("blk.{l}.{s}.weight");
        g = g
            .tensor(&t("attn_norm"), &[h], vec![1.0; h as usize])
            .tensor(&t("attn_q"), &[h, heads * hd], vals(h * heads * hd))
            .tensor(&t("attn_k"), &[h, kv * hd], vals(h * kv * hd))
            .tensor(&t("attn_v"), &[h, kv * hd], vals(h * kv * hd))
            .tensor(&t("attn_output"), &[heads * hd, h], vals(h * heads * hd))
            .tensor(&t("ffn_norm"), &[h], vec![1.0; h as usize])
            .tensor(&t("ffn_gate"), &[h, inter], vals(h * inter))
            .tensor(&t("ffn_up"), &[h, inter], vals(h * inter))
            .tensor(&t("ffn_down"), &[inter, h], vals(h * inter));
    }
    g
}

/// Sets key `k` of the GGUF under construction, replacing an earlier value (so a test can damage one key).
impl Gguf {
    pub fn without(mut self, k: &str) -> Self {
        self.kv.retain(|(n, _)| n != k);
        self
    }
}
