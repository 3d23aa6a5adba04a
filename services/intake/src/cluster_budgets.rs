//! Intake's own Kubernetes calls (each cluster's pod watch, the access
//! reviews of callers in its home cluster) share each cluster's fleet-wide
//! API budget with the workers, so the API server sees one budget for all
//! of scanfleet, not the workers' budget plus intake's.
//!
//! Intake is not configured with the budget (the workers are): it follows
//! the limits the workers last recorded, and its local throttle's while no
//! worker ever did (`FleetBudgetSettings::following`). Under the budget,
//! each call still passes the local default throttle, which bounds how
//! much of the budget callers can make intake spend on reviews.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use scanfleet_bus::{ApiBudgetBook, BusError};
use scanfleet_fleet_budget::{FleetBudget, FleetBudgetSettings};
use scanfleet_kube_access::{ApiThrottle, FleetPermits, ThrottleConfig, ThrottleConfigError};

/// One fleet budget per cluster intake calls, shared by all its calls
/// there (one lease in flight per cluster).
pub struct ClusterBudgets {
    book: ApiBudgetBook,
    budgets: Mutex<BTreeMap<String, FleetBudget>>,
}

impl ClusterBudgets {
    /// Opens the budget bucket.
    ///
    /// # Errors
    /// When the bucket does not exist or intake may not read it.
    pub async fn open(js: &async_nats::jetstream::Context) -> Result<Self, BusError> {
        Ok(Self {
            book: ApiBudgetBook::open(js).await?,
            budgets: Mutex::new(BTreeMap::new()),
        })
    }

    /// The permits of `cluster`'s fleet budget.
    pub fn permits(&self, cluster: &str) -> Arc<dyn FleetPermits> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let budget = budgets.entry(cluster.to_owned()).or_insert_with(|| {
            let local = ThrottleConfig::default();
            FleetBudget::new(
                self.book.clone(),
                cluster,
                FleetBudgetSettings::following(local.qps, local.burst),
            )
        });
        Arc::new(budget.clone())
    }

    /// A throttle for intake's calls to `cluster`: the default local
    /// throttle, under the cluster's fleet budget.
    ///
    /// # Errors
    /// Never for the default throttle; typed for the constructor's sake.
    pub fn throttle(&self, cluster: &str) -> Result<ApiThrottle, ThrottleConfigError> {
        ApiThrottle::under_fleet_budget(ThrottleConfig::default(), self.permits(cluster))
    }
}
