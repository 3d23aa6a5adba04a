//! Critical tasks: a service is its tasks, and if one of them ends outside
//! shutdown (returns, fails or panics) the service must end too, with an
//! error naming the task, so that its orchestrator restarts it. A service
//! that keeps answering `/healthz` while its scheduler or its API server
//! is gone is worse than one that is down.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

/// How long the other tasks get to finish once shutdown has begun and the
/// first task has ended cleanly.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(30);

/// The tasks a service cannot run without.
pub struct CriticalTasks {
    set: JoinSet<(&'static str, anyhow::Result<()>)>,
    handles: TaskHandles,
    shutdown: watch::Receiver<bool>,
    drain_grace: Duration,
}

/// Named handles on running critical tasks, to stop one from outside (an
/// embedding test simulating a crash).
#[derive(Clone, Default, Debug)]
pub struct TaskHandles(Arc<Mutex<BTreeMap<&'static str, AbortHandle>>>);

impl TaskHandles {
    /// Aborts the task called `name`, as a crash would end it; false when
    /// there is none.
    pub fn abort(&self, name: &str) -> bool {
        let handles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        handles.get(name).map(AbortHandle::abort).is_some()
    }

    /// The names of the tasks, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let handles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        handles.keys().copied().collect()
    }
}

impl CriticalTasks {
    /// No tasks yet; `shutdown` tells a planned end from a crash.
    pub fn new(shutdown: watch::Receiver<bool>) -> Self {
        Self {
            set: JoinSet::new(),
            handles: TaskHandles::default(),
            shutdown,
            drain_grace: DEFAULT_DRAIN_GRACE,
        }
    }

    /// How long the rest may take to finish after shutdown began.
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// Starts `task` under `name` (a short word for logs and errors).
    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error> + Send + 'static,
    {
        let handle = self
            .set
            .spawn(async move { (name, task.await.map_err(Into::into)) });
        let mut handles = self.handles.0.lock().unwrap_or_else(|p| p.into_inner());
        handles.insert(name, handle);
    }

    /// Handles on the tasks started so far and later.
    pub fn handles(&self) -> TaskHandles {
        self.handles.clone()
    }

    fn name_of(&self, id: tokio::task::Id) -> &'static str {
        let handles = self.handles.0.lock().unwrap_or_else(|p| p.into_inner());
        handles
            .iter()
            .find(|(_, h)| h.id() == id)
            .map_or("unnamed", |(name, _)| name)
    }

    /// Waits for the first task to end and decides: a clean end during
    /// shutdown lets the others finish (within the drain grace); any other
    /// end is the service's failure, and the others are stopped.
    ///
    /// # Errors
    /// The first task that failed, panicked or ended outside shutdown.
    pub async fn supervise(mut self) -> anyhow::Result<()> {
        let first = match self.set.join_next_with_id().await {
            None => return Ok(()),
            Some(first) => first,
        };
        let stopping = *self.shutdown.borrow_and_update();
        let result = match first {
            Ok((_, (_, Ok(())))) if stopping => self.drain().await,
            Ok((_, (name, Ok(())))) => Err(anyhow!("critical task {name} stopped unexpectedly")),
            Ok((_, (name, Err(e)))) => Err(e.context(format!("critical task {name} failed"))),
            Err(e) => {
                let name = self.name_of(e.id());
                let how = if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                Err(anyhow!("critical task {name} {how}"))
            }
        };
        self.set.abort_all();
        while self.set.join_next().await.is_some() {}
        result
    }

    async fn drain(&mut self) -> anyhow::Result<()> {
        let grace = self.drain_grace;
        let all = async {
            while let Some(ended) = self.set.join_next().await {
                match ended {
                    Ok((_, Ok(()))) => {}
                    Ok((name, Err(e))) => {
                        tracing::warn!(
                            task = name,
                            error = format!("{e:#}"),
                            "task failed while stopping"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "task ended abnormally while stopping"),
                }
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "tasks still running after the drain grace; stopping them"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_tasks() -> (watch::Sender<bool>, CriticalTasks) {
        let (tx, rx) = watch::channel(false);
        (tx, CriticalTasks::new(rx))
    }

    async fn until_stopped(mut rx: watch::Receiver<bool>) -> anyhow::Result<()> {
        let _ = rx.wait_for(|s| *s).await;
        Ok(())
    }

    #[tokio::test]
    async fn a_task_that_ends_outside_shutdown_fails_the_service() {
        let (tx, mut tasks) = new_tasks();
        tasks.spawn("server", until_stopped(tx.subscribe()));
        tasks.spawn("scheduler", async { Ok::<_, anyhow::Error>(()) });
        let err = tasks.supervise().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "critical task scheduler stopped unexpectedly"
        );
    }

    #[tokio::test]
    async fn a_failing_or_panicking_task_is_named() {
        let (tx, mut tasks) = new_tasks();
        tasks.spawn("server", until_stopped(tx.subscribe()));
        tasks.spawn("http", async { Err::<(), _>(anyhow!("port gone")) });
        let err = tasks.supervise().await.unwrap_err();
        assert_eq!(format!("{err:#}"), "critical task http failed: port gone");

        let (tx, mut tasks) = new_tasks();
        tasks.spawn("server", until_stopped(tx.subscribe()));
        tasks.spawn("watch", async {
            if std::hint::black_box(true) {
                panic!("a bug");
            }
            Ok::<_, anyhow::Error>(())
        });
        let err = tasks.supervise().await.unwrap_err();
        assert_eq!(err.to_string(), "critical task watch panicked");
    }

    #[tokio::test]
    async fn an_aborted_task_counts_as_a_crash() {
        let (tx, mut tasks) = new_tasks();
        tasks.spawn("server", until_stopped(tx.subscribe()));
        tasks.spawn("scheduler", until_stopped(tx.subscribe()));
        let handles = tasks.handles();
        assert_eq!(handles.names(), ["scheduler", "server"]);
        assert!(handles.abort("scheduler"));
        assert!(!handles.abort("nothing"));
        let err = tasks.supervise().await.unwrap_err();
        assert_eq!(err.to_string(), "critical task scheduler was cancelled");
    }

    #[tokio::test]
    async fn shutdown_lets_every_task_finish() {
        let (tx, mut tasks) = new_tasks();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tasks.spawn("server", until_stopped(tx.subscribe()));
        let mut rx = tx.subscribe();
        tasks.spawn("loop", async move {
            let _ = rx.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = done_tx.send(());
            Ok::<_, anyhow::Error>(())
        });
        tx.send(true).unwrap();
        tasks.supervise().await.unwrap();
        done_rx
            .await
            .expect("the slower task finished before supervise returned");
    }
}
