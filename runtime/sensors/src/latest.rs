//! [`LatestFrame`]: a one-frame slot between the camera thread and the loop. A new frame replaces the old one;
//! nothing queues, so a slow consumer always sees the newest frame and memory stays at one frame.

use flint_media::RgbImage;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A frame in the slot.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Counts frames put into the slot, from 1.
    pub seq: u64,
    /// When it was captured ([`crate::clock::now_ms`]).
    pub t_ms: u64,
    /// The frame.
    pub image: Arc<RgbImage>,
}

/// The latest-frame slot (Mutex + Condvar).
#[derive(Debug, Default)]
pub struct LatestFrame {
    slot: Mutex<Option<Frame>>,
    cond: Condvar,
}

impl LatestFrame {
    /// An empty slot.
    pub fn new() -> LatestFrame {
        LatestFrame::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Frame>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the frame; returns its sequence number.
    pub fn put(&self, t_ms: u64, image: RgbImage) -> u64 {
        let mut slot = self.lock();
        let seq = slot.as_ref().map_or(0, |f| f.seq) + 1;
        *slot = Some(Frame {
            seq,
            t_ms,
            image: Arc::new(image),
        });
        self.cond.notify_all();
        seq
    }

    /// The current frame, if any.
    pub fn get(&self) -> Option<Frame> {
        self.lock().clone()
    }

    /// Waits up to `timeout` for a frame newer than `after_seq` (0: any frame).
    pub fn wait_newer(&self, after_seq: u64, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        loop {
            if let Some(f) = slot.as_ref().filter(|f| f.seq > after_seq) {
                return Some(f.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            slot = self
                .cond
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
