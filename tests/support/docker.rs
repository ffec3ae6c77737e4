//! Driving a real Docker engine from tests and benchmarks: the docker CLI,
//! plugin builds with a unique VERSION, and the plugin's process as seen in
//! `/proc` (its CPU time and memory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs the docker CLI; `Ok(stdout)` or `Err(stderr)`.
pub fn cli(args: &[&str]) -> Result<String, String> {
    cli_at(None, args)
}

/// Runs the docker CLI against `host` (`-H`), or the default engine.
pub fn cli_at(host: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("docker");
    if let Some(host) = host {
        command.args(["-H", host]);
    }
    let output = command
        .args(args)
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Builds the plugin directory `build/NAME` with `rootfs-build`; its VERSION
/// file ends with `BUILD_ID` = `PREFIX-NAME-PID`, so [`plugin_pid`] can tell
/// this process's plugin from any other.
pub fn build_plugin_dir(root: &Path, prefix: &str, name: &str) -> Result<PathBuf, String> {
    let dir = root.join("build").join(name);
    let build_id = format!("{prefix}-{name}-{}", std::process::id());
    let status = Command::new(root.join("rootfs-build"))
        .arg(&dir)
        .env("BUILD_ID", build_id)
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("rootfs-build failed: {status}"));
    }
    Ok(dir)
}

/// The running plugin process built by this process with `prefix` (see
/// [`build_plugin_dir`]): it runs `/bin/loki-logdriver` and its root's
/// VERSION names this process.
pub fn plugin_pid(prefix: &str) -> Result<u32, String> {
    find_process(|proc_dir, cmdline| {
        if !cmdline.starts_with(b"/bin/loki-logdriver\0") {
            return false;
        }
        let version = std::fs::read_to_string(proc_dir.join("root/VERSION")).unwrap_or_default();
        version.contains(&format!("-{}\n", std::process::id()))
            && version.contains(&format!(" {prefix}-"))
    })
    .ok_or_else(|| format!("no {prefix} plugin process of this run is running"))
}

/// The first process for which `wanted(its /proc directory, its cmdline)`.
pub fn find_process(wanted: impl Fn(&Path, &[u8]) -> bool) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            wanted(&entry.path(), &cmdline).then_some(pid)
        })
}

/// A `kB` field of `/proc/PID/status`, in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Peak resident memory (VmHWM) of a process, in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// Resident memory (VmRSS) of a process, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// Bytes a process has caused to be written to storage (`write_bytes` of
/// `/proc/PID/io`: page-cache pages it dirtied, whether or not flushed yet).
pub fn storage_written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Restarts the peak-memory count (VmHWM) of a process from now.
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// User + system CPU time of a process, from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second.max(1))
}

/// The host directory of the plugin's journals (its propagated mount).
pub fn journal_root(plugin: &str) -> Result<PathBuf, String> {
    let plugin_id = cli(&["plugin", "inspect", "-f", "{{.Id}}", plugin])?;
    let data_root = cli(&["info", "-f", "{{.DockerRootDir}}"])?;
    Ok(PathBuf::from(data_root)
        .join("plugins")
        .join(plugin_id)
        .join("propagated-mount/.loki-logdriver/journal"))
}

/// Bytes of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
