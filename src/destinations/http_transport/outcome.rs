//! Merging the answers to a batch's requests into one [`Delivery`] with
//! indices into the batch.

use crate::destinations::sink::Delivery;
use std::time::Duration;

/// What became of one batch index while the requests of a send are answered.
#[derive(Debug, Clone)]
pub(super) enum Fate {
    Pending,
    Delivered,
    Retry,
    Rejected(String),
}

/// Collects per-event fates and turns them into one [`Delivery`].
pub(super) struct Outcome {
    fates: Vec<Fate>,
    retry_reason: Option<String>,
    after: Option<Duration>,
}

impl Outcome {
    pub(super) fn new(n: usize) -> Self {
        Outcome {
            fates: vec![Fate::Pending; n],
            retry_reason: None,
            after: None,
        }
    }

    pub(super) fn set(&mut self, i: usize, fate: Fate) {
        if let Some(slot) = self.fates.get_mut(i) {
            *slot = fate;
        }
    }

    /// Marks `indices` to be sent again; the first reason given is the one
    /// the merged delivery tells.
    pub(super) fn retry(&mut self, indices: &[usize], reason: &str, after: Option<Duration>) {
        self.retry_maybe_explained(indices, Some(reason), after)
    }

    /// [`retry`](Self::retry), with `None` for a part the server gave no
    /// reason for: a reason another answer gives is told instead.
    fn retry_maybe_explained(
        &mut self,
        indices: &[usize],
        reason: Option<&str>,
        after: Option<Duration>,
    ) {
        for &i in indices {
            self.set(i, Fate::Retry);
        }
        if let Some(reason) = reason {
            self.retry_reason.get_or_insert_with(|| reason.to_string());
        }
        self.after = self.after.max(after);
    }

    /// Applies a request's delivery (indices relative to `indices`).
    pub(super) fn apply(&mut self, indices: &[usize], d: Delivery) {
        match d {
            Delivery::Delivered => indices.iter().for_each(|&i| self.set(i, Fate::Delivered)),
            Delivery::Retry { reason, after } => self.retry(indices, &reason, after),
            Delivery::Rejected { reason } => indices
                .iter()
                .for_each(|&i| self.set(i, Fate::Rejected(reason.clone()))),
            Delivery::Partial {
                retry,
                rejected,
                after,
                retry_reason,
            } => {
                indices.iter().for_each(|&i| self.set(i, Fate::Delivered));
                let retry: Vec<usize> = retry
                    .iter()
                    .filter_map(|&p| indices.get(p).copied())
                    .collect();
                if !retry.is_empty() {
                    // the server's reason, when it gave one: the give-up
                    // reason after `max_attempts` and `last_error` tell it
                    // (they said only "part of the request must be retried")
                    self.retry_maybe_explained(&retry, retry_reason.as_deref(), after);
                }
                for (p, reason) in rejected {
                    if let Some(&i) = indices.get(p) {
                        self.set(i, Fate::Rejected(reason));
                    }
                }
            }
        }
    }

    pub(super) fn into_delivery(self) -> Delivery {
        let n = self.fates.len();
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        let mut pending = false;
        for (i, f) in self.fates.into_iter().enumerate() {
            match f {
                Fate::Delivered => {}
                Fate::Retry => retry.push(i),
                Fate::Pending => {
                    pending = true;
                    retry.push(i)
                }
                Fate::Rejected(r) => rejected.push((i, r)),
            }
        }
        // no reason: the server judged none of the part to retry (Splunk
        // HEC refusing a request for one event's data), which is no failed
        // attempt; a reason made up here made it one
        let reason = match (self.retry_reason, pending) {
            (Some(r), _) => Some(r),
            (None, true) => Some("internal: event not covered by any request".into()),
            (None, false) => None,
        };
        if retry.is_empty() && rejected.is_empty() {
            Delivery::Delivered
        } else if rejected.is_empty() && retry.len() == n {
            Delivery::Retry {
                reason: reason.unwrap_or_else(|| "part of the request must be retried".into()),
                after: self.after,
            }
        } else if retry.is_empty()
            && rejected.len() == n
            && rejected.iter().all(|r| r.1 == rejected[0].1)
        {
            Delivery::Rejected {
                reason: rejected.swap_remove(0).1,
            }
        } else {
            Delivery::Partial {
                retry_reason: reason.filter(|_| !retry.is_empty()),
                retry,
                rejected,
                after: self.after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_merges_requests() {
        let mut o = Outcome::new(4);
        o.apply(&[0, 1], Delivery::Delivered);
        o.apply(
            &[2, 3],
            Delivery::Partial {
                retry: vec![1],
                rejected: vec![],
                after: Some(Duration::from_secs(2)),
                retry_reason: Some("busy shard".into()),
            },
        );
        assert_eq!(
            o.into_delivery(),
            Delivery::Partial {
                retry: vec![3],
                rejected: vec![],
                after: Some(Duration::from_secs(2)),
                retry_reason: Some("busy shard".into()),
            }
        );
        // the server's reason for the retried part wins over a part
        // retried without one, whatever the order of the answers
        let first_retried = || Delivery::Partial {
            retry: vec![0],
            rejected: vec![],
            after: None,
            retry_reason: None,
        };
        let mut o = Outcome::new(3);
        o.apply(&[0], first_retried());
        o.apply(&[1, 2], Delivery::retry("503 unavailable"));
        assert_eq!(o.into_delivery(), Delivery::retry("503 unavailable"));
        let mut o = Outcome::new(1);
        o.apply(&[0], first_retried());
        assert_eq!(
            o.into_delivery(),
            Delivery::retry("part of the request must be retried")
        );
        // a part the server did not judge (HEC refused the request for
        // one event's data) stays without a reason: no failed attempt
        let unjudged = || Delivery::Partial {
            retry: vec![0, 2],
            rejected: vec![(1, "bad".into())],
            after: None,
            retry_reason: None,
        };
        let mut o = Outcome::new(3);
        o.apply(&[0, 1, 2], unjudged());
        assert_eq!(o.into_delivery(), unjudged());
        let mut o = Outcome::new(2);
        o.apply(&[0], Delivery::rejected("bad"));
        o.apply(&[1], Delivery::rejected("bad"));
        assert_eq!(o.into_delivery(), Delivery::rejected("bad"));
    }
}
