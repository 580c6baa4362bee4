//! Pinning worker threads to a board's cores.

use crate::TargetsError;

/// Restricts the calling thread to the given Linux CPU numbers (`sched_setaffinity`).
///
/// Call it from each worker at start, e.g. in rayon's `start_handler` with [`crate::Profile::core_for_thread`].
/// Fails (and changes nothing) when the list is empty, a core is out of range, or none of them is online here;
/// callers should warn and go on unpinned rather than stop.
#[cfg(target_os = "linux")]
pub fn pin_current_thread(cores: &[usize]) -> Result<(), TargetsError> {
    let err = |reason: String| TargetsError::Affinity {
        cores: cores.to_vec(),
        reason,
    };
    if cores.is_empty() {
        return Err(err("no cores given".to_string()));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &c in cores {
        if c >= max {
            return Err(err(format!(
                "core {c} is beyond the {max} a cpu_set_t holds"
            )));
        }
        // SAFETY: c < CPU_SETSIZE was checked above, so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the size and pointer describe `set`, which lives across the call.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(err(std::io::Error::last_os_error().to_string()));
    }
    Ok(())
}

/// Pinning is only implemented on Linux, the only OS the board profiles target.
#[cfg(not(target_os = "linux"))]
pub fn pin_current_thread(cores: &[usize]) -> Result<(), TargetsError> {
    Err(TargetsError::Affinity {
        cores: cores.to_vec(),
        reason: "not supported on this OS".to_string(),
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn current() -> Vec<usize> {
        // SAFETY: as in pin_current_thread; the kernel fills `set`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is this thread; size and pointer describe `set`.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(rc, 0);
        // SAFETY: i < CPU_SETSIZE.
        (0..1024)
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect()
    }

    #[test]
    fn pins_a_fresh_thread_to_one_core() {
        let allowed = current();
        let target = *allowed.last().expect("this thread may run somewhere");
        let got = std::thread::spawn(move || {
            pin_current_thread(&[target]).expect("pin to an allowed core");
            current()
        })
        .join()
        .expect("thread ran");
        assert_eq!(got, vec![target]);
    }

    #[test]
    fn refuses_empty_and_out_of_range() {
        assert!(pin_current_thread(&[]).is_err());
        assert!(pin_current_thread(&[1 << 20]).is_err());
    }
}
