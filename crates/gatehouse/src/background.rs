//! The notifier's own runtime. Deliveries run on one worker thread (and
//! its blocking threads, where SQLite reads run) at the lowest CPU
//! priority, so that on a busy server the kernel gives the cores to
//! requests first: a burst of decisions is answered at full speed and
//! its notifications follow as soon as there is room. Writes still go
//! through the store's one writer (SQLite) or the shared pool
//! (PostgreSQL) at normal priority, so a starved notifier never holds a
//! lock that a decision waits for: a write is a whole job handed over.

use anyhow::{Context, Result};
use tokio::runtime::{Builder, Runtime};

/// The nice value of the notifier's threads: the lowest priority that
/// still runs when a core is free (SCHED_IDLE would also starve it while
/// other processes merely poll).
const NICE: i32 = 19;

pub fn runtime() -> Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gatehouse-notify")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .context("cannot start the notifier's runtime")
}

/// On Linux the nice value belongs to each thread, so this lowers the
/// priority of the calling thread only. Elsewhere the notifier runs at
/// normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its integer arguments; who = 0 is
        // the calling thread on Linux.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the notifier's priority");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_notifier_runs_at_the_lowest_priority() {
        let before = current_nice();
        let runtime = super::runtime().unwrap();
        let (nice, blocking_nice) = runtime.block_on(async {
            let nice = tokio::spawn(async { current_nice() }).await.unwrap();
            let blocking = tokio::task::spawn_blocking(current_nice).await.unwrap();
            (nice, blocking)
        });
        assert_eq!(nice, super::NICE, "worker thread");
        assert_eq!(blocking_nice, super::NICE, "blocking thread (SQLite reads)");
        // The thread that built the runtime keeps its own priority.
        assert_eq!(current_nice(), before);
        runtime.shutdown_background();
    }

    fn current_nice() -> i32 {
        // SAFETY: getpriority only reads its integer arguments.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }
}
