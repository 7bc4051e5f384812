//! [`HttpSink`]: any [`HttpFormat`] as a [`Sink`]. It sends the requests a
//! format builds for a batch one after the other, bisects a request the
//! server refuses as too large (413), refreshes credentials once on 401,
//! runs the format's `confirm`, and merges the answers.

use super::answer::{body_excerpt, redirected, request_size};
use super::client::{AuthFailure, ClientError, HttpClient, TransportError};
use super::outcome::{Fate, Outcome};
use super::settings::HttpSettings;
use super::{EncodedRequest, HttpFormat, HttpResponse};
use crate::config::ConfigError;
use crate::destinations::batch::Batch;
use crate::destinations::sink::{Delivery, SendWatch, Sink, TestOutcome};
use crate::destinations::BuildContext;
use futures::future::BoxFuture;
use std::collections::VecDeque;

/// Any [`HttpFormat`] as a [`Sink`].
pub struct HttpSink<F: HttpFormat> {
    format: F,
    client: HttpClient,
    target: String,
}

/// The client for `settings`; an error at the key at fault (`ca`, else
/// `endpoint`).
pub fn client_for(settings: &HttpSettings, ctx: &BuildContext) -> Result<HttpClient, ConfigError> {
    HttpClient::new(settings).map_err(|e| {
        let key = match e {
            ClientError::CaRead { .. }
            | ClientError::CaEmpty(_)
            | ClientError::CaInvalid { .. } => "ca",
            _ => "endpoint",
        };
        ConfigError::new(format!("{}.{key}", ctx.path()), e.to_string())
    })
}

/// Upper bound on 413-driven bisections per send (2^12 pieces).
const MAX_SPLIT_DEPTH: u32 = 12;

impl<F: HttpFormat> HttpSink<F> {
    /// `target` is what status shows: it must hold no secret (see [`origin_of`](super::origin_of)).
    /// The client is built first, by [`client_for`]: a builder checks the
    /// client's settings (`ca`) before it requires its endpoint, so that a
    /// missing endpoint does not hide them.
    pub fn with_client(format: F, client: HttpClient, target: String) -> Self {
        HttpSink {
            format,
            client,
            target,
        }
    }

    /// The format (for tests and status).
    pub fn format(&self) -> &F {
        &self.format
    }

    /// Sends one request with the format's credentials, refreshing them once on 401.
    async fn exchange(&self, req: &EncodedRequest) -> Result<HttpResponse, TransportError> {
        let auth = self
            .format
            .authorize(&self.client)
            .await
            .map_err(TransportError::Auth)?;
        let resp = self.client.execute(req, auth.as_ref()).await?;
        if resp.status == 401 && self.format.invalidate() {
            let auth = self
                .format
                .authorize(&self.client)
                .await
                .map_err(TransportError::Auth)?;
            return self.client.execute(req, auth.as_ref()).await;
        }
        Ok(resp)
    }

    /// Re-encodes the events at `indices` (batch positions) as their own batch.
    fn encode_subset(
        &self,
        batch: &Batch,
        indices: &[usize],
        outcome: &mut Outcome,
    ) -> Vec<EncodedRequest> {
        let enc = self.format.encode(&batch.subset(indices));
        for (p, reason) in enc.rejected {
            if let Some(&i) = indices.get(p) {
                outcome.set(i, Fate::Rejected(reason));
            }
        }
        enc.requests
            .into_iter()
            .map(|mut r| {
                r.indices = r
                    .indices
                    .iter()
                    .filter_map(|&p| indices.get(p).copied())
                    .collect();
                r
            })
            .collect()
    }

    /// Sends `batch`; `watch` hears of each 413 answered by halving.
    async fn deliver(&self, batch: &Batch, watch: Option<&dyn SendWatch>) -> Delivery {
        if batch.is_empty() {
            return Delivery::Delivered;
        }
        let mut outcome = Outcome::new(batch.len());
        let enc = self.format.encode(batch);
        for (i, reason) in enc.rejected {
            outcome.set(i, Fate::Rejected(reason));
        }
        let mut queue: VecDeque<(EncodedRequest, u32)> =
            enc.requests.into_iter().map(|r| (r, 0)).collect();
        // parts of a halved request answered with a retry (see below)
        let mut failed_parts = 0u32;
        while let Some((req, depth)) = queue.pop_front() {
            let resp = match self.exchange(&req).await {
                Ok(r) => r,
                Err(e) => {
                    let reason = format!("{}: {e}", self.target);
                    // The same would happen to the rest: refused credentials
                    // reject them all, anything else retries them all
                    // (don't hammer a server that is unreachable).
                    let rest = std::iter::once(req).chain(queue.drain(..).map(|(r, _)| r));
                    for r in rest {
                        match &e {
                            TransportError::Auth(AuthFailure::Refused(_)) => outcome.apply(
                                &r.indices,
                                Delivery::Rejected {
                                    reason: reason.clone(),
                                },
                            ),
                            TransportError::Auth(AuthFailure::Unavailable { after, .. }) => {
                                outcome.retry(&r.indices, &reason, *after)
                            }
                            _ => outcome.retry(&r.indices, &reason, None),
                        }
                    }
                    break;
                }
            };
            if resp.status == 413 && req.indices.len() > 1 && depth < MAX_SPLIT_DEPTH {
                // a failed request all the same: the status and log say so
                // while the halving goes on (down to single events when
                // the server refuses everything: a proxy's small body
                // limit, whatever the vendor's documented one)
                if let Some(w) = watch {
                    w.failed_attempt(&format!(
                        "{} answered 413 (payload too large) to a request of {}; \
                         sending it again in halves ({})",
                        self.target,
                        request_size(&req),
                        body_excerpt(&resp.body)
                    ));
                }
                let (a, b) = req.indices.split_at(req.indices.len() / 2);
                for half in [b, a] {
                    for r in self
                        .encode_subset(batch, half, &mut outcome)
                        .into_iter()
                        .rev()
                    {
                        queue.push_front((r, depth + 1));
                    }
                }
                continue;
            }
            let mut d = if (300..400).contains(&resp.status) {
                redirected(&self.target, &req.url, &resp, self.format.url_is_secret())
            } else {
                self.format.classify(&req, &resp)
            };
            if d == Delivery::Delivered {
                d = self.format.confirm(&self.client, &req, &resp).await;
            }
            let whole_retry = matches!(d, Delivery::Retry { .. });
            outcome.apply(&req.indices, d.clone());
            if let (true, Delivery::Retry { reason, after }) = (whole_retry, &d) {
                // Throttled or failing: the remaining requests would fare
                // the same. But after the first part of a request halved
                // after a 413 that fails, its other parts still go, unless
                // the server asked to wait: the batch is then retried as
                // only the part that failed, at its halved size. Retried
                // whole, it was refused as too large again and halved anew
                // at every retry, the other half waiting behind the failing
                // one. A second part failing too stops the send.
                failed_parts += u32::from(depth > 0);
                let split = depth > 0 && after.is_none() && failed_parts == 1;
                let rest = std::mem::take(&mut queue);
                for (r, part_depth) in rest {
                    if split && part_depth > 0 {
                        queue.push_back((r, part_depth));
                    } else {
                        outcome.retry(&r.indices, reason, *after);
                    }
                }
            }
        }
        outcome.into_delivery()
    }
}

impl<F: HttpFormat> Sink for HttpSink<F> {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(batch, None))
    }

    fn send_watched<'a>(
        &'a self,
        batch: &'a Batch,
        watch: &'a dyn SendWatch,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(batch, Some(watch)))
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn encode_only(&self, batch: &Batch) -> Option<usize> {
        let enc = self.format.encode(batch);
        Some(enc.requests.iter().map(|r| r.body.len()).sum())
    }

    fn test<'a>(&'a self, probe: &'a Batch) -> BoxFuture<'a, TestOutcome> {
        Box::pin(async move {
            let mut healthy = None;
            match self.format.health(&self.client).await {
                Some(Err(problem)) => {
                    return TestOutcome {
                        ok: false,
                        message: format!("{}: {problem}", self.target),
                    }
                }
                Some(Ok(msg)) => healthy = Some(msg),
                None => {}
            }
            let prefix = healthy.map(|m| format!("{m}; ")).unwrap_or_default();
            match self.deliver(probe, None).await {
                Delivery::Delivered => TestOutcome {
                    ok: true,
                    message: format!("{prefix}test event accepted by {}", self.target),
                },
                Delivery::Retry { reason, .. } | Delivery::Rejected { reason } => TestOutcome {
                    ok: false,
                    message: format!("{prefix}test event not accepted: {reason}"),
                },
                Delivery::Partial { rejected, .. } => TestOutcome {
                    ok: false,
                    message: format!(
                        "{prefix}test event not accepted by {}{}",
                        self.target,
                        rejected
                            .first()
                            .map(|r| format!(": {}", r.1))
                            .unwrap_or_default()
                    ),
                },
            }
        })
    }
}
