//! Expert paging under a memory budget.
//!
//! Without paging every tensor is read straight from the map, and the OS pages a cold expert in 4 KiB pieces after
//! each fault, with no idea which expert comes next. With paging ([`crate::Model::enable_paging`]) the non-expert
//! weights stay mapped, and each MoE expert (one paging group: one contiguous, page-aligned span of the file) is read
//! whole into a resident set whose bytes never exceed the budget:
//! - a layer first *wants* the experts its rows were routed to ([`Pager::want`]): resident ones are hits, missing
//!   ones go to the front of the I/O thread's queue. It computes the resident ones while those are read, then takes
//!   each missing one as it arrives, so a miss blocks only on the expert that is missing;
//! - ahead of that, the decoder applies the next MoE layer's router to the hidden state entering the current block
//!   (pre-gating) and queues the experts it picks for prefetch ([`Pager::prefetch`]), behind the demand reads;
//! - one background I/O thread reads whole experts, one large read each: `O_DIRECT` where the filesystem allows it,
//!   else a buffered read followed by `POSIX_FADV_DONTNEED` so the page cache keeps no second copy. A stated storage
//!   rate (`io_rate`: a board's SD card or UFS) throttles it;
//! - to make room the I/O thread evicts a resident expert that no layer is using or waiting for: the least recently
//!   used (`Lru`), the least often used (`Lfu`), or the least recently used outside a pinned set (`Pinned`: the
//!   experts the calibration routed most to, up to half the budget, loaded at the start and never evicted). A
//!   prefetch never waits for room; a demand read waits until a layer releases an expert.
//!
//! Every byte of an expert's buffer counts against the budget from the moment its read is scheduled; the peak is
//! reported with the hit rate, the prediction accuracy and the bytes read ([`PagingStats`]).

use crate::ModelError;
use serde::Serialize;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Alignment and size granule of an expert buffer (what `O_DIRECT` asks; experts start on such a boundary).
pub const PAGE: u64 = 4096;

/// Which resident expert leaves to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Least recently used.
    Lru,
    /// Least frequently used (ties: least recently).
    Lfu,
    /// The calibration's most routed experts pinned (up to half the budget), LRU for the rest.
    Pinned,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "lru" => Ok(Policy::Lru),
            "lfu" => Ok(Policy::Lfu),
            "pinned" => Ok(Policy::Pinned),
            _ => Err(format!("`{s}` is not a paging policy (lru, lfu, pinned)")),
        }
    }
}

/// How to page.
#[derive(Clone, Debug)]
pub struct PagingOptions {
    /// Bytes the resident experts may take, at most.
    pub budget: u64,
    pub policy: Policy,
    /// Read with `O_DIRECT` (bypassing the page cache) where the filesystem allows it.
    pub direct: bool,
    /// Throttle expert reads to this many bytes per second (a board's storage), if set.
    pub io_rate: Option<f64>,
    /// Pre-gate the next MoE layer and prefetch its experts.
    pub prefetch: bool,
    /// For `Policy::Pinned`: per MoE layer (in order), per expert, how often the calibration routed to it.
    pub pins: Option<Vec<Vec<f64>>>,
}

/// What the pager did, since it started or since [`Pager::reset_stats`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct PagingStats {
    /// The budget and the bytes of every expert of the model (page-rounded).
    pub budget: u64,
    pub expert_bytes: u64,
    /// Bytes resident now, and the most ever resident (or reserved for a read under way).
    pub resident: u64,
    pub peak_resident: u64,
    /// Experts wanted by a layer: resident already, being read (prefetched late, or wanted twice), or missing.
    pub wanted: u64,
    pub hits: u64,
    pub in_flight: u64,
    pub misses: u64,
    /// Whole-expert reads and their bytes.
    pub reads: u64,
    pub bytes_read: u64,
    pub evictions: u64,
    /// Prefetches read, and those dropped for want of room.
    pub prefetched: u64,
    pub prefetch_dropped: u64,
    /// Routed experts of layers that had a prediction, and how many of them it named.
    pub predicted: u64,
    pub predicted_right: u64,
    /// Seconds layers waited for a missing expert, and seconds the I/O thread spent reading (with the throttle).
    pub wait_seconds: f64,
    pub read_seconds: f64,
    /// Whether reads bypass the page cache.
    pub direct: bool,
}

impl PagingStats {
    /// Hits over wanted.
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.wanted.max(1) as f64
    }

    /// Routed experts the pre-gating named, over the routed experts of predicted layers.
    pub fn prediction_accuracy(&self) -> f64 {
        self.predicted_right as f64 / self.predicted.max(1) as f64
    }
}

/// A page-aligned buffer of its own anonymous mapping: freeing it returns the pages to the system at once (a heap
/// allocation of this size would stay in malloc's arena once its mmap threshold has grown, and the resident set
/// with it).
struct AlignedBuf {
    map: memmap2::MmapMut,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> Option<AlignedBuf> {
        let map = memmap2::MmapMut::map_anon(len.max(1)).ok()?;
        Some(AlignedBuf { map, len })
    }
    fn as_slice(&self) -> &[u8] {
        &self.map[..self.len]
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

/// One expert read into memory: the bytes of its file span.
pub struct Resident {
    buf: AlignedBuf,
    /// The file offset of the buffer's first byte.
    base: u64,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resident({} bytes at {})", self.buf.len, self.base)
    }
}

impl Resident {
    /// The bytes at file offset `off`, `len` long (inside the expert's span).
    pub(crate) fn bytes(&self, off: u64, len: usize) -> &[u8] {
        let s = (off - self.base) as usize;
        &self.buf.as_slice()[s..s + len]
    }
}

/// An expert a layer is computing with; dropping it lets the pager evict the expert again.
pub struct Held<'a> {
    res: Option<Arc<Resident>>,
    pager: &'a Pager,
}

impl std::fmt::Debug for Held<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({:?})", self.res)
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = Resident;
    fn deref(&self) -> &Resident {
        self.res.as_ref().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.res.take());
        let _g = self.pager.lock();
        self.pager.shared.cond.notify_all();
    }
}

enum Slot {
    Absent,
    /// Wanted, waiting in the demand queue (no bytes reserved yet).
    Queued,
    /// Bytes reserved, read under way.
    Loading,
    Ready(Arc<Resident>),
}

struct Entry {
    slot: Slot,
    /// Layers that wanted it and have not taken it yet.
    wanted: u32,
    last: u64,
    uses: u64,
    pinned: bool,
    /// File span and its page-rounded size.
    off: u64,
    len: u64,
    size: u64,
}

struct State {
    entries: Vec<Vec<Entry>>,
    tick: u64,
    demand: VecDeque<(usize, usize)>,
    prefetch: VecDeque<(usize, usize)>,
    /// Per MoE layer, the experts the last pre-gating named (cleared when the layer routes).
    predicted: Vec<Option<Vec<bool>>>,
    stats: PagingStats,
    /// A read that failed: every later take reports it.
    error: Option<String>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    path: PathBuf,
    policy: Policy,
    budget: u64,
    io_rate: Option<f64>,
}

/// The resident set of a model's experts and the thread that reads them.
pub struct Pager {
    shared: Arc<Shared>,
    io: Option<std::thread::JoinHandle<()>>,
    prefetch: bool,
    /// The largest number of experts one pre-gating may queue (a quarter of what the budget holds).
    prefetch_cap: usize,
}

impl std::fmt::Debug for Pager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pager({} bytes)", self.shared.budget)
    }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

fn open(path: &Path, direct: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

impl Pager {
    /// A pager over `spans` (per MoE layer, per expert: the file offset and length of its paging group) of the file
    /// at `path`. Errors name the file and what is wrong with the budget.
    pub(crate) fn new(
        path: &Path,
        spans: Vec<Vec<(u64, u64)>>,
        opts: &PagingOptions,
    ) -> Result<Pager, ModelError> {
        let bad = |msg: String| ModelError::Invalid(format!("{}: paging: {msg}", path.display()));
        let largest = spans
            .iter()
            .flatten()
            .map(|s| round_up(s.1))
            .max()
            .unwrap_or(0);
        if largest == 0 {
            return Err(bad("the model has no experts to page".into()));
        }
        if opts.budget < 2 * largest {
            return Err(bad(format!(
                "a budget of {} bytes for experts holds fewer than two experts of {largest} bytes",
                opts.budget
            )));
        }
        if let Some(r) = opts.io_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(bad(format!("the I/O rate {r} is not a positive number")));
            }
        }
        let mut entries: Vec<Vec<Entry>> = spans
            .iter()
            .map(|l| {
                l.iter()
                    .map(|&(off, len)| Entry {
                        slot: Slot::Absent,
                        wanted: 0,
                        last: 0,
                        uses: 0,
                        pinned: false,
                        off,
                        len,
                        size: round_up(len),
                    })
                    .collect()
            })
            .collect();
        // Pinned experts are read first, as demand reads nobody waits for.
        let mut demand = VecDeque::new();
        if opts.policy == Policy::Pinned {
            let pins = opts.pins.as_ref().ok_or_else(|| {
                bad("the pinned policy needs routing statistics, and the file has none (quantize it with \
                     flint-quantize, which records them)"
                    .into())
            })?;
            if pins.len() != entries.len()
                || pins.iter().zip(&entries).any(|(p, e)| p.len() != e.len())
            {
                return Err(bad(
                    "the routing statistics do not match the model's MoE layers and experts".into(),
                ));
            }
            let mut order: Vec<(f64, usize, usize)> = pins
                .iter()
                .enumerate()
                .flat_map(|(l, p)| p.iter().enumerate().map(move |(e, &f)| (f, l, e)))
                .filter(|(f, _, _)| *f > 0.0)
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut pinned = 0;
            for (_, l, e) in order {
                let s = entries[l][e].size;
                if pinned + s > opts.budget / 2 {
                    continue;
                }
                pinned += s;
                entries[l][e].pinned = true;
                entries[l][e].slot = Slot::Queued;
                demand.push_back((l, e));
            }
        }
        // Probe O_DIRECT: some filesystems (tmpfs) refuse it at open, others at the first read.
        let direct = opts.direct && open(path, true).is_ok();
        let layers = entries.len();
        let expert_bytes = entries.iter().flatten().map(|e| e.size).sum();
        let per_layer_max = spans.iter().map(Vec::len).max().unwrap_or(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                entries,
                tick: 0,
                demand,
                prefetch: VecDeque::new(),
                predicted: vec![None; layers],
                stats: PagingStats {
                    budget: opts.budget,
                    expert_bytes,
                    direct,
                    ..Default::default()
                },
                error: None,
                stop: false,
            }),
            cond: Condvar::new(),
            path: path.to_path_buf(),
            policy: opts.policy,
            budget: opts.budget,
            io_rate: opts.io_rate,
        });
        let file = open(path, direct).map_err(|e| bad(format!("opening for expert reads: {e}")))?;
        let sh = shared.clone();
        let io = std::thread::Builder::new()
            .name("flint-pager".into())
            .spawn(move || io_loop(sh, file, direct))
            .map_err(|e| bad(format!("starting the I/O thread: {e}")))?;
        Ok(Pager {
            shared,
            io: Some(io),
            prefetch: opts.prefetch,
            prefetch_cap: ((opts.budget / largest) as usize / 4).clamp(1, per_layer_max),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Layer `l` (its index among the MoE layers) will take each of `experts` once: resident ones are kept, missing
    /// ones are queued ahead of every prefetch.
    pub fn want(&self, l: usize, experts: &[usize]) {
        let mut st = self.lock();
        if let Some(pred) = st.predicted[l].take() {
            st.stats.predicted += experts.len() as u64;
            st.stats.predicted_right += experts.iter().filter(|&&e| pred[e]).count() as u64;
        }
        let mut queued = false;
        for &e in experts {
            st.tick += 1;
            let tick = st.tick;
            st.stats.wanted += 1;
            let ent = &mut st.entries[l][e];
            ent.wanted += 1;
            ent.uses += 1;
            ent.last = tick;
            match ent.slot {
                Slot::Ready(_) => st.stats.hits += 1,
                Slot::Queued | Slot::Loading => st.stats.in_flight += 1,
                Slot::Absent => {
                    ent.slot = Slot::Queued;
                    st.stats.misses += 1;
                    st.demand.push_back((l, e));
                    queued = true;
                }
            }
        }
        if queued {
            self.shared.cond.notify_all();
        }
    }

    /// The expert if it is resident now (taking it from the wanted ones).
    pub fn try_take(&self, l: usize, e: usize) -> Option<Held<'_>> {
        let mut st = self.lock();
        let ent = &mut st.entries[l][e];
        match &ent.slot {
            Slot::Ready(r) => {
                let r = r.clone();
                ent.wanted = ent.wanted.saturating_sub(1);
                Some(Held {
                    res: Some(r),
                    pager: self,
                })
            }
            _ => None,
        }
    }

    /// The expert, waiting for its read if it is not resident yet. A failed read is an error naming the file.
    pub fn take(&self, l: usize, e: usize) -> Result<Held<'_>, ModelError> {
        let t = Instant::now();
        let mut st = self.lock();
        loop {
            if let Some(msg) = &st.error {
                return Err(ModelError::Invalid(msg.clone()));
            }
            let ent = &mut st.entries[l][e];
            if let Slot::Ready(r) = &ent.slot {
                let r = r.clone();
                ent.wanted = ent.wanted.saturating_sub(1);
                st.stats.wait_seconds += t.elapsed().as_secs_f64();
                return Ok(Held {
                    res: Some(r),
                    pager: self,
                });
            }
            if matches!(ent.slot, Slot::Absent) {
                // Evicted between `want` and now cannot happen (wanted experts stay); queue it all the same.
                ent.slot = Slot::Queued;
                st.demand.push_front((l, e));
                self.shared.cond.notify_all();
            }
            st = self.shared.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether pre-gating should run.
    pub fn prefetching(&self) -> bool {
        self.prefetch
    }

    /// The pre-gating of layer `l` named `experts` (most wanted first): remembered to score the prediction, and the
    /// first few queued for prefetch.
    pub fn prefetch(&self, l: usize, experts: &[usize]) {
        let mut st = self.lock();
        let n = st.entries[l].len();
        let mut mask = vec![false; n];
        for &e in experts {
            mask[e] = true;
        }
        st.predicted[l] = Some(mask);
        for &e in experts.iter().take(self.prefetch_cap) {
            if matches!(st.entries[l][e].slot, Slot::Absent) {
                st.prefetch.push_back((l, e));
            }
        }
        // Behind a slow disk, old predictions are worth less than new ones.
        while st.prefetch.len() > 4 * self.prefetch_cap {
            st.prefetch.pop_front();
            st.stats.prefetch_dropped += 1;
        }
        self.shared.cond.notify_all();
    }

    /// The figures so far.
    pub fn stats(&self) -> PagingStats {
        self.lock().stats.clone()
    }

    /// Starts the counters again (the resident set stays).
    pub fn reset_stats(&self) {
        let mut st = self.lock();
        let s = &st.stats;
        let fresh = PagingStats {
            budget: s.budget,
            expert_bytes: s.expert_bytes,
            resident: s.resident,
            peak_resident: s.resident,
            direct: s.direct,
            ..Default::default()
        };
        st.stats = fresh;
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(h) = self.io.take() {
            let _ = h.join();
        }
    }
}

/// The resident expert to evict under the policy: one no layer holds or waits for, and not pinned.
fn victim(st: &State, policy: Policy) -> Option<(usize, usize)> {
    let mut best: Option<((u64, u64), (usize, usize))> = None;
    for (l, layer) in st.entries.iter().enumerate() {
        for (e, ent) in layer.iter().enumerate() {
            let Slot::Ready(r) = &ent.slot else { continue };
            if ent.wanted > 0 || ent.pinned || Arc::strong_count(r) > 1 {
                continue;
            }
            let key = match policy {
                Policy::Lru | Policy::Pinned => (ent.last, 0),
                Policy::Lfu => (ent.uses, ent.last),
            };
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, (l, e)));
            }
        }
    }
    best.map(|b| b.1)
}

/// Evicts until `need` more bytes fit; false if they cannot now. An evicted buffer of exactly `need` bytes is kept
/// in `spare` for the read to reuse (its pages are already faulted in).
fn make_room(
    st: &mut State,
    need: u64,
    budget: u64,
    policy: Policy,
    spare: &mut Option<AlignedBuf>,
) -> bool {
    while st.stats.resident + need > budget {
        let Some((l, e)) = victim(st, policy) else {
            return false;
        };
        let ent = &mut st.entries[l][e];
        if let Slot::Ready(r) = std::mem::replace(&mut ent.slot, Slot::Absent) {
            if spare.is_none() && ent.size == need {
                *spare = Arc::try_unwrap(r).ok().map(|r| r.buf);
            }
        }
        st.stats.resident -= ent.size;
        st.stats.evictions += 1;
    }
    true
}

fn io_loop(sh: Arc<Shared>, mut file: File, mut direct: bool) {
    let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if st.stop {
            return;
        }
        let (job, demand) = if let Some(j) = st.demand.pop_front() {
            (j, true)
        } else if let Some(j) = st.prefetch.pop_front() {
            (j, false)
        } else {
            st = sh.cond.wait(st).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let (l, e) = job;
        let ent = &st.entries[l][e];
        let go = match ent.slot {
            Slot::Queued => demand,
            Slot::Absent => !demand,
            Slot::Loading | Slot::Ready(_) => false,
        };
        if !go {
            continue;
        }
        let (off, len, size) = (ent.off, ent.len, ent.size);
        let mut spare = None;
        if demand {
            while !make_room(&mut st, size, sh.budget, sh.policy, &mut spare) {
                if st.stop {
                    return;
                }
                st = sh.cond.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        } else if !make_room(&mut st, size, sh.budget, sh.policy, &mut spare) {
            st.stats.prefetch_dropped += 1;
            continue;
        }
        st.entries[l][e].slot = Slot::Loading;
        st.stats.resident += size;
        st.stats.peak_resident = st.stats.peak_resident.max(st.stats.resident);
        drop(st);
        let t = Instant::now();
        let read = read_span(&sh.path, &mut file, &mut direct, off, len, size, spare);
        if let (Ok(_), Some(rate)) = (&read, sh.io_rate) {
            let due = Duration::from_secs_f64(size as f64 / rate);
            if let Some(rest) = due.checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        let secs = t.elapsed().as_secs_f64();
        st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        st.stats.read_seconds += secs;
        st.stats.direct = direct;
        match read {
            Ok(r) => {
                st.stats.reads += 1;
                st.stats.bytes_read += size;
                if !demand {
                    st.stats.prefetched += 1;
                }
                st.entries[l][e].slot = Slot::Ready(Arc::new(r));
            }
            Err(msg) => {
                st.entries[l][e].slot = Slot::Absent;
                st.stats.resident -= size;
                st.error.get_or_insert(msg);
            }
        }
        sh.cond.notify_all();
    }
}

/// Reads the span `off..off + len` into a page-aligned buffer of `size` bytes (`spare`, or a new one). An `O_DIRECT` read the filesystem
/// refuses switches the file to buffered reads (and `direct` to false) for good.
fn read_span(
    path: &Path,
    file: &mut File,
    direct: &mut bool,
    off: u64,
    len: u64,
    size: u64,
    spare: Option<AlignedBuf>,
) -> Result<Resident, String> {
    let err = |what: String| {
        format!(
            "{}: reading the expert at byte {off} ({len} bytes): {what}",
            path.display()
        )
    };
    let mut buf = match spare {
        Some(b) => b,
        None => AlignedBuf::new(size as usize).ok_or_else(|| err("out of memory".into()))?,
    };
    let mut done = 0usize;
    while (done as u64) < size {
        match file.read_at(&mut buf.as_mut_slice()[done..], off + done as u64) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if *direct && done == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                *direct = false;
                *file = open(path, false).map_err(|e| err(e.to_string()))?;
            }
            Err(e) => return Err(err(e.to_string())),
        }
    }
    if (done as u64) < len {
        return Err(err(format!("the file ends {done} bytes into it")));
    }
    if !*direct {
        drop_cached(file, off, size);
    }
    Ok(Resident { buf, base: off })
}

/// Asks the kernel to drop the clean cached pages of `file` in `off..off + len` (`len` 0: to the end); returns
/// `posix_fadvise`'s error number, 0 on success.
pub fn drop_cached(file: &File, off: u64, len: u64) -> i32 {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor; the call only drops clean cached pages.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            off as i64,
            len as i64,
            libc::POSIX_FADV_DONTNEED,
        )
    }
}

/// Bytes of a memory budget kept for the program, its scratch and the KV cache beyond [`kv_reserve`]'s count.
pub const RESERVE: u64 = 32 << 20;

/// Parses a size: bytes, with an optional `K`, `M` or `G` (powers of 1024; `KiB`, `MB`… read the same), or a
/// percentage of `whole` (`25%`).
pub fn parse_size(s: &str, whole: u64) -> Result<u64, String> {
    let t = s.trim();
    let bad =
        || format!("`{s}` is not a size (bytes, with K, M or G, or a percentage such as 25%)");
    if let Some(p) = t.strip_suffix('%') {
        let f: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(f.is_finite() && f > 0.0 && f <= 100.0) {
            return Err(format!("`{s}`: a percentage must be in (0, 100]"));
        }
        return Ok((whole as f64 * f / 100.0) as u64);
    }
    let upper = t.to_ascii_uppercase();
    let body = upper
        .trim_end_matches("IB")
        .trim_end_matches('B')
        .trim_end();
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        _ => (body, 1),
    };
    let f: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(f.is_finite() && f > 0.0) || f * mult as f64 > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok((f * mult as f64) as u64)
}

/// The KV cache's bytes for `tokens` positions of `model` at `dtype`.
pub fn kv_reserve(c: &crate::ModelConfig, dtype: crate::KvDtype, tokens: usize) -> u64 {
    let per = match dtype {
        crate::KvDtype::F32 => 4.0,
        crate::KvDtype::F16 => 2.0,
        crate::KvDtype::Q8 => 34.0 / 32.0,
    };
    (c.num_layers as f64 * 2.0 * (c.num_kv_heads * c.head_dim) as f64 * per * tokens as f64) as u64
}

/// How a memory budget of `total` bytes splits for a model whose file has `file_len` bytes, `expert_bytes` of them
/// in experts: the mapped rest, the reserve (`reserve`: [`RESERVE`] plus the KV cache), and the experts' share.
/// `None` when the whole file fits (no paging needed); an error when the mapped weights and the reserve alone do
/// not fit.
pub fn expert_budget(
    total: u64,
    file_len: u64,
    expert_bytes: u64,
    reserve: u64,
) -> Result<Option<u64>, String> {
    if total >= file_len + reserve {
        return Ok(None);
    }
    let mapped = file_len.saturating_sub(expert_bytes);
    match total.checked_sub(mapped + reserve) {
        Some(b) if b > 0 && expert_bytes > 0 => Ok(Some(b)),
        _ => Err(format!(
            "{total} bytes do not hold the model's {mapped} bytes of non-expert weights, which stay mapped, and \
             {reserve} bytes for the KV cache and scratch{}",
            if expert_bytes == 0 {
                " (the model is dense: it has no experts to page)"
            } else {
                ""
            }
        )),
    }
}
