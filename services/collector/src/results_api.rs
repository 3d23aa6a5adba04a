//! The gRPC `Results` service: every call is admitted (the caller is who
//! their token or client certificate proves) and reads only what
//! [`ResultReader`] allows; the wire forms are in [`crate::result_wire`].

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use scanfleet_contracts::v1::{
    self, GetResultRequest, ListResultsRequest, ListResultsResponse, ScanResult,
    WatchResultsRequest, results_server::Results,
};
use scanfleet_edge_access::{Access, AccessError, Caller, Resource, Verb};
use scanfleet_result_store::{PageToken, ResultFilter, StoredResult};
use tokio::sync::{broadcast, mpsc};
use tonic::{Request, Response, Status};

use crate::result_access::{ReadError, ResultReader};
use crate::result_wire::{drift_to_wire, filter_from_wire, matches, status, to_wire};

/// The `Results` service.
pub struct ResultsService {
    /// The store as callers may read it.
    pub reader: Arc<ResultReader>,
    /// Newly stored results.
    pub persisted: broadcast::Sender<StoredResult>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<ScanResult, Status>> + Send>>;

impl ResultsService {
    async fn admit<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Ok(self.reader.gate.admit_grpc(request).await?)
    }

    /// Every existing row the watch starts with, each one visible to the
    /// caller.
    async fn existing(
        &self,
        caller: &Caller,
        request: &WatchResultsRequest,
        filter: &ResultFilter,
        wanted: &mut BTreeSet<String>,
    ) -> Result<Vec<StoredResult>, Status> {
        let mut initial = Vec::new();
        if !wanted.is_empty() {
            for id in &request.scan_ids {
                match self.reader.one(caller, id, Verb::Watch).await {
                    Ok(row) => {
                        wanted.remove(id);
                        initial.push(row);
                    }
                    Err(ReadError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(initial);
        }
        if !request.include_existing {
            return Ok(initial);
        }
        let mut token = None;
        loop {
            let page = self
                .reader
                .store
                .list(filter, 0, token.as_ref())
                .await
                .map_err(|e| status(&e))?;
            for row in page.results {
                if self
                    .reader
                    .may_see(caller, Verb::Watch, &row.namespace)
                    .await?
                {
                    initial.push(row);
                }
            }
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(initial),
            }
        }
    }
}

#[tonic::async_trait]
impl Results for ResultsService {
    async fn get(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<ScanResult>, Status> {
        let caller = self.admit(&request).await?;
        let scan_id = request.into_inner().scan_id;
        let row = self.reader.one(&caller, &scan_id, Verb::Get).await?;
        Ok(Response::new(to_wire(&row)))
    }

    async fn list(
        &self,
        request: Request<ListResultsRequest>,
    ) -> Result<Response<ListResultsResponse>, Status> {
        let caller = self.admit(&request).await?;
        let request = request.into_inner();
        let mut filter = filter_from_wire(request.filter)?;
        let token = if request.page_token.is_empty() {
            None
        } else {
            Some(PageToken::decode(&request.page_token).map_err(|e| status(&e))?)
        };
        self.reader.narrow(&caller, Verb::List, &mut filter).await?;
        let page = self
            .reader
            .store
            .list(&filter, request.page_size, token.as_ref())
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(ListResultsResponse {
            results: page.results.iter().map(to_wire).collect(),
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn get_report(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let caller = self.admit(&request).await?;
        let scan_id = request.into_inner().scan_id;
        let report = self.reader.report(&caller, &scan_id).await?;
        Ok(Response::new(v1::Report {
            scan_id,
            media_type: report.media_type,
            sha256: report.sha256,
            body: report.body,
        }))
    }

    async fn get_drift(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<v1::DriftReport>, Status> {
        let caller = self.admit(&request).await?;
        let scan_id = request.into_inner().scan_id;
        let drift = self.reader.drift(&caller, &scan_id).await?;
        Ok(Response::new(drift_to_wire(&drift)))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchResultsRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = self.admit(&request).await?;
        let request = request.into_inner();
        let filter = filter_from_wire(request.filter.clone())?;
        if let Some(namespace) = &filter.namespace {
            let access = Access::new(Verb::Watch, Resource::Results, namespace.clone());
            self.reader
                .gate
                .authorize(&caller, access)
                .await
                .map_err(Status::from)?;
        }
        // Subscribe before reading existing rows so nothing falls between.
        let live = self.persisted.subscribe();
        let mut wanted: BTreeSet<String> = request.scan_ids.iter().cloned().collect();
        let by_id = !wanted.is_empty();
        let initial = self
            .existing(&caller, &request, &filter, &mut wanted)
            .await?;
        let watch = Watch {
            reader: self.reader.clone(),
            caller,
            by_id,
            wanted,
            filter,
        };
        Ok(Response::new(Box::pin(watch.stream(initial, live))))
    }
}

/// One open `Watch`: what it waits for and who is watching.
struct Watch {
    reader: Arc<ResultReader>,
    caller: Caller,
    by_id: bool,
    wanted: BTreeSet<String>,
    filter: ResultFilter,
}

/// What to do with a newly stored result.
enum Delivery {
    Send,
    Skip,
    Refuse(Status),
}

impl Watch {
    /// Whether the caller gets `r`: it must be wanted, and visible to them
    /// now (a revoked permission stops deliveries within the cache TTL).
    async fn delivery(&mut self, r: &StoredResult, already_sent: &BTreeSet<String>) -> Delivery {
        let relevant = if self.by_id {
            self.wanted.remove(&r.scan_id)
        } else {
            matches(&self.filter, r) && !already_sent.contains(&r.scan_id)
        };
        if !relevant {
            return Delivery::Skip;
        }
        match self
            .reader
            .may_see(&self.caller, Verb::Watch, &r.namespace)
            .await
        {
            Ok(true) => Delivery::Send,
            Ok(false) if self.by_id => Delivery::Refuse(
                AccessError::Forbidden {
                    user: self.caller.name.clone(),
                    access: Access::new(Verb::Watch, Resource::Results, r.namespace.clone()),
                }
                .to_status(),
            ),
            Ok(false) => Delivery::Skip,
            Err(e) => Delivery::Refuse(e.to_status()),
        }
    }

    fn stream(
        mut self,
        initial: Vec<StoredResult>,
        mut live: broadcast::Receiver<StoredResult>,
    ) -> impl Stream<Item = Result<ScanResult, Status>> + Send {
        let (tx, rx) = mpsc::channel(64);
        // A row stored between subscribing and listing arrives both ways.
        let already_sent: BTreeSet<String> = initial.iter().map(|r| r.scan_id.clone()).collect();
        tokio::spawn(async move {
            for r in &initial {
                if tx.send(Ok(to_wire(r))).await.is_err() {
                    return;
                }
            }
            while !(self.by_id && self.wanted.is_empty()) {
                let r = match live.recv().await {
                    Ok(r) => r,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::data_loss(format!(
                                "watcher fell {n} results behind; re-list and watch again"
                            ))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let sent = match self.delivery(&r, &already_sent).await {
                    Delivery::Skip => Ok(()),
                    Delivery::Send => tx.send(Ok(to_wire(&r))).await,
                    Delivery::Refuse(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}
