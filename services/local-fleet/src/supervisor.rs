//! The process supervisor: starts children in order, restarts any that
//! crash (with back-off, see [`crate::restart_policy`]), and stops them in
//! stages so that in-flight work finishes.
//!
//! Every check is one synchronous pass ([`Supervisor::check`]) between
//! awaits, so the async callers can drop a supervision future at any await
//! (Ctrl-C, the demo finishing) without leaving a child half-recorded. The
//! one async step, a [`Renewal`], is marked done only once it finished, so a
//! dropped one simply runs again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::Signal;

use crate::child_process::ChildProcess;
use crate::child_spec::ChildSpec;
use crate::restart_policy::{CrashRecord, Decision, RestartPolicy};

/// How often children are checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Log lines quoted when the supervisor gives up on a child.
const TAIL_LINES: usize = 15;

/// What must be issued again after a child restarts, before the children
/// that depend on it restart (kubesim forgets the identities it issued, so
/// they are issued again before intake, the workers and the collector read
/// them). It must be safe to repeat.
pub type Renewal = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<()>>>>>;

/// One child and its history.
struct Supervised {
    spec: ChildSpec,
    run: Option<ChildProcess>,
    /// Set while a crashed child waits out its back-off.
    restart_at: Option<Instant>,
    restarts: u32,
    crashes: CrashRecord,
    refresh: Refresh,
    renewal: Option<Renewal>,
    /// Restarted, and its renewal has not finished since.
    renewal_due: bool,
}

/// A restart forced by the restart of the child this one depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    No,
    /// Restart once the child at this index is ready again.
    WhenReady(usize),
    /// SIGTERM sent; start again as soon as it has exited.
    Stopping,
}

impl Supervised {
    fn is_ready(&self) -> bool {
        self.run.as_ref().is_some_and(|r| self.spec.ready.holds(r))
    }

    fn is_running(&mut self) -> bool {
        self.run.as_mut().is_some_and(|r| r.exited().is_none())
    }
}

/// The running fleet's children.
pub struct Supervisor {
    children: Vec<Supervised>,
    logs: PathBuf,
    policy: RestartPolicy,
}

impl Supervisor {
    /// A supervisor writing each child's output to `logs/NAME.log`.
    pub fn new(logs: &Path, policy: RestartPolicy) -> Self {
        Self {
            children: Vec::new(),
            logs: logs.to_path_buf(),
            policy,
        }
    }

    /// Starts a child and waits until it is ready, supervising the others
    /// meanwhile. A crash during start-up follows the restart policy.
    ///
    /// # Errors
    /// When it cannot be started, is not ready in time, or a child is given
    /// up on.
    pub async fn start(&mut self, spec: ChildSpec) -> Result<()> {
        let run = ChildProcess::spawn(&spec.program, &spec.args, &self.log_of(&spec), 0)?;
        self.children.push(Supervised {
            spec,
            run: Some(run),
            restart_at: None,
            restarts: 0,
            crashes: CrashRecord::default(),
            refresh: Refresh::No,
            renewal: None,
            renewal_due: false,
        });
        let index = self.children.len() - 1;
        loop {
            self.check()?;
            self.renew_restarted().await?;
            let child = &self.children[index];
            if child.is_ready() {
                return Ok(());
            }
            if let Some(run) = &child.run
                && run.ran_for() > child.spec.ready_within
            {
                bail!(
                    "{} was not ready within {:?}; last log lines of {}:\n{}",
                    child.spec.name,
                    child.spec.ready_within,
                    run.log().display(),
                    run.log_tail(TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// From now on, every restart of the child `name` is followed by
    /// `renewal`, and its dependents restart only once that succeeded.
    ///
    /// # Errors
    /// When no child is called `name`.
    pub fn renew_after_restart(&mut self, name: &str, renewal: Renewal) -> Result<()> {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.spec.name == name)
            .ok_or_else(|| anyhow!("no child {name} to renew after"))?;
        child.renewal = Some(renewal);
        Ok(())
    }

    /// Supervises until a child is given up on; returns why.
    pub async fn supervise(&mut self) -> anyhow::Error {
        loop {
            if let Err(e) = self.check() {
                return e;
            }
            if let Err(e) = self.renew_restarted().await {
                return e;
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// Runs the renewal of every restarted child that is ready again. One
    /// that fails because the child died again waits for the next restart;
    /// one that fails while the child runs is given up on (it would only
    /// fail again, and the dependents must not restart without it).
    async fn renew_restarted(&mut self) -> Result<()> {
        for child in &mut self.children {
            if !child.renewal_due || !child.is_ready() {
                continue;
            }
            let Some(renewal) = child.renewal.as_mut() else {
                child.renewal_due = false;
                continue;
            };
            let name = child.spec.name.clone();
            match renewal().await {
                Ok(()) => {
                    child.renewal_due = false;
                    eprintln!("supervisor: renewed what {name} issued, after its restart");
                }
                Err(e) if !child.is_running() => eprintln!(
                    "supervisor: renewal after {name}'s restart failed as it exited again ({e:#}); retried after its next restart"
                ),
                Err(e) => {
                    return Err(e.context(format!("renewal after {name}'s restart")));
                }
            }
        }
        Ok(())
    }

    /// One pass: notices exits, restarts children whose back-off is over,
    /// and restarts the dependents of a restarted child once it is ready
    /// and renewed.
    ///
    /// # Errors
    /// When a child is given up on or cannot be started again.
    pub fn check(&mut self) -> Result<()> {
        for index in 0..self.children.len() {
            self.notice_exit(index)?;
            self.restart_if_due(index)?;
        }
        self.refresh_dependents();
        Ok(())
    }

    fn notice_exit(&mut self, index: usize) -> Result<()> {
        let child = &mut self.children[index];
        let Some(run) = child.run.as_mut() else {
            return Ok(());
        };
        let Some(status) = run.exited() else {
            return Ok(());
        };
        let name = child.spec.name.clone();
        if child.refresh == Refresh::Stopping {
            child.refresh = Refresh::No;
            child.run = None;
            child.restart_at = Some(Instant::now());
            return Ok(());
        }
        let ran = run.ran_for();
        match self
            .policy
            .after_exit(&mut child.crashes, ran, status.code())
        {
            Decision::RestartAfter(delay) => {
                eprintln!(
                    "supervisor: {name} exited ({status}) after {:.1} s; restart {} in {delay:?} (log: {})",
                    ran.as_secs_f64(),
                    child.restarts + 1,
                    run.log().display()
                );
                child.run = None;
                child.restart_at = Some(Instant::now() + delay);
                Ok(())
            }
            Decision::GiveUp(why) => Err(anyhow!(
                "{name} exited ({status}) after {:.1} s and is not restarted: {why}; last log lines of {}:\n{}",
                ran.as_secs_f64(),
                run.log().display(),
                run.log_tail(TAIL_LINES)
            )),
        }
    }

    fn restart_if_due(&mut self, index: usize) -> Result<()> {
        let log = self.log_of(&self.children[index].spec);
        let child = &mut self.children[index];
        if child.run.is_some() || child.restart_at.is_none_or(|at| at > Instant::now()) {
            return Ok(());
        }
        child.restart_at = None;
        child.restarts += 1;
        let run = ChildProcess::spawn(&child.spec.program, &child.spec.args, &log, child.restarts)?;
        eprintln!(
            "supervisor: {} started again (restart {}, pid {})",
            child.spec.name,
            child.restarts,
            run.pid()
        );
        child.run = Some(run);
        child.renewal_due = child.renewal.is_some();
        let name = child.spec.name.clone();
        for dependent in &mut self.children {
            if dependent.spec.restarts_with.as_deref() == Some(name.as_str()) {
                dependent.refresh = Refresh::WhenReady(index);
            }
        }
        Ok(())
    }

    fn refresh_dependents(&mut self) {
        for index in 0..self.children.len() {
            let Refresh::WhenReady(dependency) = self.children[index].refresh else {
                continue;
            };
            if !self.children[dependency].is_ready() || self.children[dependency].renewal_due {
                continue;
            }
            let because = self.children[dependency].spec.name.clone();
            let child = &mut self.children[index];
            match child.run.as_mut() {
                Some(run) => {
                    eprintln!(
                        "supervisor: restarting {} because {because} was restarted",
                        child.spec.name
                    );
                    run.signal(Signal::SIGTERM);
                    child.refresh = Refresh::Stopping;
                }
                // Waiting out its own back-off: it starts fresh anyway.
                None => child.refresh = Refresh::No,
            }
        }
    }

    /// Stops every child, stage by stage (ascending `stop_stage`): SIGTERM
    /// to the stage, wait for it within its grace, SIGKILL what is left.
    pub async fn stop_in_order(&mut self) {
        let mut stages: Vec<u8> = self.children.iter().map(|c| c.spec.stop_stage).collect();
        stages.sort_unstable();
        stages.dedup();
        for stage in stages {
            let members: Vec<usize> = (0..self.children.len())
                .filter(|&i| self.children[i].spec.stop_stage == stage)
                .collect();
            self.stop_stage(&members).await;
        }
    }

    async fn stop_stage(&mut self, members: &[usize]) {
        let mut names = Vec::new();
        let mut grace = Duration::ZERO;
        for &i in members {
            let child = &mut self.children[i];
            child.restart_at = None;
            child.refresh = Refresh::No;
            child.renewal_due = false;
            if let Some(run) = child.run.as_mut()
                && run.exited().is_none()
            {
                run.signal(Signal::SIGTERM);
                names.push(child.spec.name.clone());
                grace = grace.max(child.spec.stop_grace);
            }
        }
        if names.is_empty() {
            return;
        }
        eprintln!("stopping {}…", names.join(", "));
        let deadline = Instant::now() + grace;
        loop {
            let running: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| {
                    self.children[i]
                        .run
                        .as_mut()
                        .is_some_and(|r| r.exited().is_none())
                })
                .collect();
            if running.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for i in running {
                    let child = &mut self.children[i];
                    eprintln!(
                        "{} did not stop within {grace:?} of SIGTERM; killing it",
                        child.spec.name
                    );
                    if let Some(run) = child.run.as_mut() {
                        run.kill();
                    }
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for &i in members {
            self.children[i].run = None;
        }
    }

    /// SIGKILLs every child at once (a second Ctrl-C while stopping).
    pub fn kill_all(&mut self) {
        for child in &mut self.children {
            if let Some(run) = child.run.as_mut() {
                run.kill();
            }
            child.run = None;
            child.restart_at = None;
        }
    }

    /// The running children whose name starts with `prefix`, with their pid.
    pub fn running(&self, prefix: &str) -> Vec<(String, u32)> {
        self.children
            .iter()
            .filter(|c| c.spec.name.starts_with(prefix))
            .filter_map(|c| c.run.as_ref().map(|r| (c.spec.name.clone(), r.pid())))
            .collect()
    }

    fn log_of(&self, spec: &ChildSpec) -> PathBuf {
        self.logs.join(format!("{}.log", spec.name))
    }
}

impl Drop for Supervisor {
    /// Only reached with children left when `stop_in_order` did not run
    /// (an error or panic on the way): SIGTERM all, then SIGKILL after 5 s.
    fn drop(&mut self) {
        let mut left: Vec<&mut ChildProcess> = self
            .children
            .iter_mut()
            .filter_map(|c| c.run.as_mut())
            .collect();
        for run in &mut left {
            run.signal(Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while left.iter_mut().any(|r| r.exited().is_none()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for run in &mut left {
            run.kill();
        }
    }
}
