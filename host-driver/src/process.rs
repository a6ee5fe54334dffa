//! Local servers (policy-server, a test's registry) as child processes that never outlive
//! the process that started them, on free ports of 127.0.0.1.
//!
//! A child is spawned from a dedicated supervisor thread with `PR_SET_PDEATHSIG`, so the
//! kernel kills it when that thread (and hence the process) ends, even after a panic or when
//! the thread that asked for it is gone.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// A running child process; dropping this kills and reaps it.
pub struct Supervised {
    pid: u32,
    /// Dropping this sender tells the supervisor thread to kill the process.
    stop: Option<mpsc::Sender<()>>,
    supervisor: Option<thread::JoinHandle<()>>,
}

impl Supervised {
    /// Spawns `command` from a thread that lives as long as the child, so that
    /// `PR_SET_PDEATHSIG` (which fires when the *thread* that forked the child ends) only
    /// fires when the child is stopped on purpose or the whole process ends.
    pub fn spawn(mut command: Command, name: &str) -> Result<Supervised> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<std::io::Result<u32>>();
        let supervisor = thread::Builder::new()
            .name(format!("{name}-supervisor"))
            .spawn(move || {
                // SAFETY: getpid is async-signal-safe and has no preconditions.
                let parent = unsafe { libc::getpid() };
                // SAFETY: the closure runs between fork and exec and only calls the
                // async-signal-safe prctl and getppid.
                unsafe {
                    command.pre_exec(move || {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // The parent may have died before prctl: then nobody would kill us.
                        if libc::getppid() != parent {
                            return Err(std::io::Error::other("parent exited during spawn"));
                        }
                        Ok(())
                    });
                }
                match command.spawn() {
                    Ok(child) => {
                        let _ = started_tx.send(Ok(child.id()));
                        supervise(child, &stop_rx);
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            })?;
        let pid = started_rx
            .recv()
            .with_context(|| format!("the {name} supervisor thread died"))??;
        Ok(Supervised {
            pid,
            stop: Some(stop_tx),
            supervisor: Some(supervisor),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True once the child has exited by itself (or been killed).
    pub fn has_exited(&self) -> bool {
        self.supervisor.as_ref().is_none_or(|s| s.is_finished())
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

/// Waits until the child exits by itself or a stop is requested (the sender dropped), then
/// kills and reaps it. Owning the `Child` here means the PID is never signalled after reuse.
fn supervise(mut child: Child, stop: &mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(Duration::from_millis(200)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
            }
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

/// Asks the kernel for a free port of 127.0.0.1. Another process may take it before the
/// server binds it: callers retry their start when that happens.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
