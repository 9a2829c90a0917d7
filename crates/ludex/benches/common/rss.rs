//! Memory of child processes, for the benchmarks that run the `ludex` binary.

#![allow(dead_code, reason = "each benchmark uses the part it needs")]

/// Peak resident memory of a running process in KiB (`VmHWM`, which starts afresh at exec,
/// unlike `getrusage`, which would count the memory this process holds when it forks).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident memory of a running process now, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A KiB figure of `/proc/PID/status`, by its field name.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs a command to its end, sampling its peak RSS every 5 ms: (exit status, peak KiB).
pub fn run_measured(command: &mut std::process::Command) -> (std::process::ExitStatus, u64) {
    let mut child = command.spawn().expect("start the command");
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            return (status, peak);
        }
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
