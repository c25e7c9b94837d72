//! A group of first attempts of one message to several endpoints, carried by one broker
//! message ([`JobGroup`]). Its jobs run side by side, each in a first-attempt slot of its own,
//! and each with its own attempt record. The broker message is acknowledged once every job is
//! done, so a dispatcher that dies with a group in hand loses none of it: the group comes back,
//! and the jobs already recorded are dropped as duplicates.
//!
//! One slow receiver must not hold its group's broker message (a place of the prefetch) for
//! the whole of its attempt: a job still running after [`PATIENCE`] is *handed off*, a copy of
//! it stored in the outbox, due after the longest an attempt can take; the group is then
//! acknowledged, and the attempt goes on. If that attempt is recorded, the copy finds it so and
//! is dropped; if the dispatcher died meanwhile, the copy runs. A job that could not be
//! recorded (the database is away) is handed off the same way, due soon.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use octohooks_domain::job::{DeliveryJob, JobBatch, JobGroup};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::consumer::{Disposition, Incoming, JobHandler};

/// How long a group waits for a job's attempt before handing it off: far above a healthy
/// receiver's answer, far below the delivery timeout.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// When the copy of a job that could not be recorded runs.
const RECORD_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// A job of a group or batch started (took its slot) or finished.
pub(crate) enum Progress {
    Started(usize),
    Done(usize, Disposition),
}

/// Where each job of a group or batch stands.
pub(crate) struct Jobs {
    started: Vec<Option<Instant>>,
    done: Vec<Option<Disposition>>,
}

impl Jobs {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            started: vec![None; count],
            done: (0..count).map(|_| None).collect(),
        }
    }

    fn note(&mut self, progress: Progress) {
        match progress {
            Progress::Started(index) => self.started[index] = Some(Instant::now()),
            Progress::Done(index, disposition) => self.done[index] = Some(disposition),
        }
    }

    /// When the first running job still within its patience runs out of it; `None` when no
    /// job is left to wait for (every one is done, or running past its patience).
    fn waiting_until(&self) -> Option<Option<Instant>> {
        let mut waiting = false;
        let mut until: Option<Instant> = None;
        let now = Instant::now();
        for (started, done) in self.started.iter().zip(&self.done) {
            if done.is_some() {
                continue;
            }
            match started {
                None => waiting = true,
                Some(at) if now < *at + PATIENCE => {
                    waiting = true;
                    until = Some(until.map_or(*at + PATIENCE, |u| u.min(*at + PATIENCE)));
                }
                Some(_) => {}
            }
        }
        waiting.then_some(until)
    }

    /// Follows the jobs' `reports` until none is left to wait for: every job is done, or has
    /// been running past [`PATIENCE`].
    pub(crate) async fn follow(&mut self, reports: &mut mpsc::Receiver<Progress>) {
        while let Some(until) = self.waiting_until() {
            let report = match until {
                Some(until) => match tokio::time::timeout_at(until, reports.recv()).await {
                    Ok(report) => report,
                    Err(_) => continue,
                },
                None => reports.recv().await,
            };
            match report {
                Some(progress) => self.note(progress),
                None => break,
            }
        }
    }

    /// The jobs to hand off, with when their copies are due: those still running, and those
    /// that could not be recorded.
    fn to_hand_off(&self, hand_off_after: Duration) -> Vec<(usize, Duration)> {
        self.done
            .iter()
            .enumerate()
            .filter_map(|(index, done)| match done {
                None => Some((index, hand_off_after)),
                Some(Disposition::Requeue) => Some((index, RECORD_AGAIN_AFTER)),
                Some(Disposition::Ack) => None,
            })
            .collect()
    }
}

/// A first-attempt slot from `slots`, when the job takes one (waiting for it).
pub(crate) async fn take_slot(slots: Option<Arc<Semaphore>>) -> Option<OwnedSemaphorePermit> {
    slots?.acquire_owned().await.ok()
}

/// The jobs of a group, each with the group's trace.
pub(crate) fn of_group(group: &JobGroup, traceparent: Option<&str>) -> Vec<Traced> {
    group
        .jobs()
        .map(|job| (job, traceparent.map(str::to_owned)))
        .collect()
}

/// The jobs of a batch, each with its own trace.
pub(crate) fn of_batch(batch: JobBatch) -> Vec<Traced> {
    batch
        .jobs
        .into_iter()
        .map(|batched| (batched.job, batched.traceparent))
        .collect()
}

/// A job and the trace context it continues.
pub(crate) type Traced = (DeliveryJob, Option<String>);

/// Runs the jobs of a group (or of a batch that left the express lane) and says what becomes
/// of their broker message. `slots`: the first-attempt slots each job takes while it runs;
/// `park`: the broker delivered the message too often, so each job is parked in the outbox
/// instead; `hand_off_after`: when the copy of a job handed off while its attempt runs is due.
pub(crate) async fn run<H: JobHandler>(
    handler: H,
    jobs: Vec<Traced>,
    park: bool,
    slots: Option<Arc<Semaphore>>,
    hand_off_after: Duration,
) -> Disposition {
    if park {
        let parked = join_all(jobs.into_iter().map(|(job, traceparent)| {
            handler.handle(Incoming {
                job,
                traceparent,
                park: true,
                express: false,
                slot: None,
            })
        }))
        .await;
        return if parked.contains(&Disposition::Requeue) {
            Disposition::Requeue
        } else {
            Disposition::Ack
        };
    }
    let (progress, mut reports) = mpsc::channel(jobs.len() * 2);
    for (index, (job, traceparent)) in jobs.iter().cloned().enumerate() {
        let (handler, slots, progress) = (handler.clone(), slots.clone(), progress.clone());
        tokio::spawn(async move {
            let slot = take_slot(slots).await;
            let _ = progress.send(Progress::Started(index)).await;
            let incoming = Incoming {
                job,
                traceparent,
                park: false,
                express: false,
                slot,
            };
            let disposition = handler.handle(incoming).await;
            let _ = progress.send(Progress::Done(index, disposition)).await;
        });
    }
    drop(progress);
    let mut state = Jobs::new(jobs.len());
    state.follow(&mut reports).await;
    let handing = state.to_hand_off(hand_off_after);
    if handing.is_empty() {
        return Disposition::Ack;
    }
    let stored = join_all(handing.iter().map(|(index, after)| {
        let (job, traceparent) = &jobs[*index];
        handler.hand_off(job, traceparent.as_deref(), *after)
    }))
    .await;
    if stored.iter().all(|stored| *stored) {
        return Disposition::Ack;
    }
    // The copies could not all be stored: wait for every job and let the group come back; the
    // jobs recorded by then are dropped as duplicates.
    while let Some(progress) = reports.recv().await {
        state.note(progress);
    }
    Disposition::Requeue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_waits_for_jobs_not_started_and_for_running_ones_within_patience() {
        let mut jobs = Jobs::new(3);
        assert!(matches!(jobs.waiting_until(), Some(None)), "none started");
        jobs.note(Progress::Started(0));
        jobs.note(Progress::Started(1));
        jobs.note(Progress::Started(2));
        assert!(matches!(jobs.waiting_until(), Some(Some(_))));
        jobs.note(Progress::Done(0, Disposition::Ack));
        jobs.note(Progress::Done(1, Disposition::Requeue));
        jobs.started[2] = Some(Instant::now() - PATIENCE);
        assert!(
            jobs.waiting_until().is_none(),
            "the last runs past patience"
        );
        assert_eq!(
            jobs.to_hand_off(Duration::from_secs(25)),
            vec![(1, RECORD_AGAIN_AFTER), (2, Duration::from_secs(25))]
        );
    }
}
