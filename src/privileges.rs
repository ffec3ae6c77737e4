//! Dropping the capabilities Docker gives every plugin.
//!
//! A managed plugin runs as root with Docker's default capability set
//! (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, `CAP_SETUID`, `CAP_NET_RAW`, ... 14 of
//! them), no seccomp profile and no `no_new_privs`. The plugin needs none:
//! every file it touches belongs to root, its own user (the FIFOs dockerd
//! creates with mode 0700, the propagated mount, its socket directory, the
//! secrets mount), so plain owner permissions suffice; its socket and its
//! connections need no privilege either.
//!
//! [`drop_all`] empties the bounding, ambient, inheritable, permitted and
//! effective sets and sets `no_new_privs`, so nothing the process does later
//! (not even an `execve` of a setuid or file-capability binary) gets a
//! capability back. Capabilities belong to a thread: call it before any
//! other thread starts (before the async runtime), and every thread started
//! later inherits the empty sets.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// What [`drop_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The bounding set could be emptied (needs `CAP_SETPCAP`, which Docker
    /// gives plugins; a process started without it keeps its bounding set,
    /// which `no_new_privs` then makes harmless).
    pub bounding: bool,
    /// `CapEff`, `CapPrm`, `CapBnd` as `/proc/self/status` shows them after.
    pub status: String,
}

/// The highest capability number the kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(63)
}

/// Empties every capability set of the calling thread and sets
/// `no_new_privs` (see the module documentation).
pub fn drop_all() -> Result<Dropped, String> {
    let mut bounding = true;
    for cap in 0..=last_capability() {
        // SAFETY: prctl with integer arguments only.
        let done = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if done != 0 {
            match io::Error::last_os_error().raw_os_error() {
                // Past the kernel's last capability.
                Some(libc::EINVAL) => break,
                // No CAP_SETPCAP: the bounding set stays.
                Some(libc::EPERM) => {
                    bounding = false;
                    break;
                }
                _ => {
                    return Err(format!(
                        "cannot drop capability {cap} from the bounding set: {}",
                        io::Error::last_os_error()
                    ));
                }
            }
        }
    }
    // SAFETY: prctl with integer arguments only. EINVAL before Linux 4.3,
    // which has no ambient set to clear.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and data are the layout capset(2) expects for version 3.
    let set = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if set != 0 {
        return Err(format!(
            "cannot clear the capability sets: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "cannot set no_new_privs: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(Dropped {
        bounding,
        status: status_line(),
    })
}

/// `CapEff=… CapPrm=… CapBnd=… NoNewPrivs=…` from `/proc/thread-self/status`.
fn status_line() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status")
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .unwrap_or_default();
    status
        .lines()
        .filter(|l| {
            ["CapEff:", "CapPrm:", "CapBnd:", "NoNewPrivs:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join("="))
        .map(|l| l.replacen(":=", "=", 1))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Capabilities are per thread: dropping them on a thread of its own
    /// leaves the test process as it was.
    #[test]
    fn a_thread_that_drops_them_has_none_left() {
        let dropped = std::thread::spawn(|| {
            let dropped = drop_all().unwrap();
            // Even root cannot take one back now.
            let mut header = CapHeader {
                version: CAPABILITY_VERSION_3,
                pid: 0,
            };
            let all = [CapData {
                effective: u32::MAX,
                permitted: u32::MAX,
                inheritable: 0,
            }; 2];
            // SAFETY: as in drop_all.
            let regained = unsafe {
                libc::syscall(
                    libc::SYS_capset,
                    &mut header as *mut CapHeader,
                    all.as_ptr(),
                )
            };
            (dropped, regained)
        })
        .join()
        .unwrap();
        let (dropped, regained) = dropped;
        assert_ne!(regained, 0, "capabilities came back");
        assert!(
            dropped.status.contains("CapEff=0000000000000000")
                && dropped.status.contains("CapPrm=0000000000000000")
                && dropped.status.contains("NoNewPrivs=1"),
            "{dropped:?}"
        );
        if dropped.bounding {
            assert!(
                dropped.status.contains("CapBnd=0000000000000000"),
                "{dropped:?}"
            );
        }
    }
}
