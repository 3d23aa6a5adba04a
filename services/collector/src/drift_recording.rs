//! Records drift reports as results are stored, in either order: a
//! container scan is compared with the newest image scan of its digest and
//! profile version; an image scan with each workload's newest container
//! scan of that digest and version.
//!
//! The comparison itself is [`crate::drift::control_drift`] (no IO); this
//! module reads the two stored reports (opened and checked against their
//! signed digests by [`ReportsAtRest`]), and stores the outcome kept as
//! the reports are (encrypted at rest when they are). It runs after the
//! result's commit and before its acknowledgement, for a redelivered
//! result too, and storing a drift report is idempotent: a database
//! outage here leaves the event unacknowledged, and its redelivery
//! records the drift then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use scanfleet_result_store::{DriftRecord, ResultStore, StoreError, StoredResult};
use serde_json::Value;

use crate::drift::{ControlDrift, control_drift};
use crate::reports_at_rest::ReportsAtRest;

/// Compares stored results with their partners of the other kind.
#[derive(Clone)]
pub struct DriftRecorder {
    /// Where results and drift reports are.
    pub store: Arc<ResultStore>,
    /// How reports (and drift reports) are kept.
    pub at_rest: ReportsAtRest,
}

/// One drift report recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The container scan it is about.
    pub container_scan_id: String,
    /// How many controls drifted.
    pub drifted: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether `row` can take part in a comparison at all.
fn comparable(row: &StoredResult) -> bool {
    row.completed && row.report_sha256.is_some()
}

/// What pairs an image scan with container scans: digest, profile name
/// and version.
type PartnerKey = (String, String, String);

fn partner_key(r: &StoredResult) -> PartnerKey {
    (
        r.image_digest.clone(),
        r.profile_name.clone(),
        r.profile_version.clone(),
    )
}

/// A copy of `e` for another row it failed (an outage stays an outage).
fn same_kind(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Database(other.to_string()),
    }
}

impl DriftRecorder {
    /// Records every drift report `row` completes (none for a failed scan
    /// or one without a report, or without a partner).
    ///
    /// # Errors
    /// [`StoreError`] only when the database fails; a report that cannot
    /// be read or compared is logged and skipped, since redelivery would
    /// not change it.
    pub async fn after_stored(&self, row: &StoredResult) -> Result<Vec<Recorded>, StoreError> {
        if !comparable(row) {
            return Ok(Vec::new());
        }
        let (digest, name, version) = (&row.image_digest, &row.profile_name, &row.profile_version);
        let pairs: Vec<(StoredResult, StoredResult)> = if row.is_image_scan() {
            let containers = self
                .store
                .latest_container_scans(digest, name, version)
                .await?;
            containers.into_iter().map(|c| (row.clone(), c)).collect()
        } else {
            let image = self.store.latest_image_scan(digest, name, version).await?;
            image.into_iter().map(|i| (i, row.clone())).collect()
        };
        let mut recorded = Vec::with_capacity(pairs.len());
        for (image, container) in &pairs {
            if let Some(done) = self.record(image, container).await? {
                recorded.push(done);
            }
        }
        Ok(recorded)
    }

    /// [`DriftRecorder::after_stored`] for each row of a stored batch, in
    /// order, with the image-scan partners of all its container results
    /// found in one query instead of one per result.
    ///
    /// # Errors
    /// Each row's own: a failed partner query fails every container result
    /// that needed it (each is then redelivered and compared again).
    pub async fn after_stored_batch(
        &self,
        rows: &[&StoredResult],
    ) -> Vec<Result<Vec<Recorded>, StoreError>> {
        let containers: Vec<&StoredResult> = rows
            .iter()
            .copied()
            .filter(|r| comparable(r) && !r.is_image_scan())
            .collect();
        let partners = self.image_partners(&containers).await;
        let mut done = Vec::with_capacity(rows.len());
        for row in rows {
            done.push(if !comparable(row) {
                Ok(Vec::new())
            } else if row.is_image_scan() {
                self.after_stored(row).await
            } else {
                match &partners {
                    Err(e) => Err(same_kind(e)),
                    Ok(partners) => match partners.get(&partner_key(row)) {
                        None => Ok(Vec::new()),
                        Some(image) => self
                            .record(image, row)
                            .await
                            .map(|r| r.into_iter().collect()),
                    },
                }
            });
        }
        done
    }

    /// The newest image scan for each container result's digest and
    /// profile, keyed by [`partner_key`].
    async fn image_partners(
        &self,
        containers: &[&StoredResult],
    ) -> Result<HashMap<PartnerKey, StoredResult>, StoreError> {
        if containers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut digests: Vec<&str> = containers.iter().map(|r| r.image_digest.as_str()).collect();
        digests.sort_unstable();
        digests.dedup();
        let found = self.store.latest_image_scans(&digests).await?;
        Ok(found.into_iter().map(|i| (partner_key(&i), i)).collect())
    }

    /// Compares one pair and stores the outcome.
    async fn record(
        &self,
        image: &StoredResult,
        container: &StoredResult,
    ) -> Result<Option<Recorded>, StoreError> {
        let (Some(image_hdf), Some(container_hdf)) = (
            self.hdf(&image.scan_id).await?,
            self.hdf(&container.scan_id).await?,
        ) else {
            return Ok(None);
        };
        let controls = match control_drift(&image_hdf, &container_hdf) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(image_scan = %image.scan_id, container_scan = %container.scan_id, error = %e, "no drift report");
                return Ok(None);
            }
        };
        let json = serde_json::to_vec(&controls).unwrap_or_default();
        let (body, encoding) = match self.at_rest.seal_bytes(json) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::error!(error = %e, "cannot keep the drift report as reports are kept");
                return Ok(None);
            }
        };
        self.store
            .put_drift(&DriftRecord {
                container_scan_id: container.scan_id.clone(),
                image_scan_id: image.scan_id.clone(),
                image_finished_at_ms: image.finished_at_ms,
                profile_name: container.profile_name.clone(),
                profile_version: container.profile_version.clone(),
                drifted: controls.len() as i64,
                controls: body,
                encoding,
                computed_at_ms: now_ms(),
            })
            .await?;
        tracing::info!(image_scan = %image.scan_id, container_scan = %container.scan_id, drifted = controls.len(), "drift recorded");
        Ok(Some(Recorded {
            container_scan_id: container.scan_id.clone(),
            drifted: controls.len(),
        }))
    }

    /// A stored report, opened, checked and parsed; `None` (logged) when
    /// it is missing or unreadable.
    async fn hdf(&self, scan_id: &str) -> Result<Option<Value>, StoreError> {
        let Some(report) = self.store.report(scan_id).await? else {
            return Ok(None);
        };
        let opened = match self.at_rest.open(report) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(scan_id, error = %e, "stored report unreadable; no drift report");
                return Ok(None);
            }
        };
        Ok(serde_json::from_slice(&opened.body).ok())
    }
}

/// A stored drift report, opened.
#[derive(Clone, Debug)]
pub struct DriftReport {
    /// What the store keeps besides the controls.
    pub record: DriftRecord,
    /// The drifted controls, in id order.
    pub controls: Vec<ControlDrift>,
}

/// Why a stored drift report cannot be handed out.
#[derive(Debug, thiserror::Error)]
pub enum DriftReadError {
    /// It does not decrypt with this collector's identities.
    #[error(transparent)]
    Open(#[from] crate::reports_at_rest::SealError),
    /// It is not the JSON this collector writes.
    #[error("the stored drift report is damaged: {0}")]
    Damaged(String),
}

/// Opens a stored drift report.
///
/// # Errors
/// [`DriftReadError`].
pub fn open(at_rest: &ReportsAtRest, record: DriftRecord) -> Result<DriftReport, DriftReadError> {
    let json = at_rest.open_bytes(record.controls.clone(), record.encoding)?;
    let controls =
        serde_json::from_slice(&json).map_err(|e| DriftReadError::Damaged(e.to_string()))?;
    Ok(DriftReport { record, controls })
}
