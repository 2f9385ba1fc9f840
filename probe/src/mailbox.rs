//! [`channel`]: an unbounded multi-producer, single-consumer queue that allocates nothing
//! until a message is queued.
//!
//! Why not tokio's unbounded channel: it allocates a block of 32 slots per channel up front,
//! and a node agent keeps several mostly idle channels per pod (pod updates, container exits,
//! probe result changes) — at a thousand pods that block was a visible part of each pod's
//! memory. Here an idle channel is one small allocation. It lives in this crate because the
//! results cache uses it and the agent, which depends on this crate, uses it for its workers.
//!
//! [`Sender::send_replacing`] also lets a producer replace the message still queued last
//! (the newest version of an object supersedes the older one nobody has read yet).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    notify: Notify,
    senders: AtomicUsize,
    receiver: AtomicBool,
}

/// The sending half; cloning it adds a sender. The channel closes when every sender is gone.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued, and senders remain.
    #[error("no message is queued")]
    Empty,
    /// Nothing is queued, and every sender is gone.
    #[error("every sender is gone")]
    Disconnected,
}

/// A new channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        senders: AtomicUsize::new(1),
        receiver: AtomicBool::new(true),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `msg`; gives it back when the receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), T> {
        self.send_replacing(msg, |_| false)
    }

    /// Queues `msg`, replacing the last queued message instead when `supersedes(last)`;
    /// gives `msg` back when the receiver is gone.
    pub fn send_replacing(&self, msg: T, supersedes: impl FnOnce(&T) -> bool) -> Result<(), T> {
        if !self.shared.receiver.load(Ordering::Acquire) {
            return Err(msg);
        }
        {
            let mut q = self.shared.queue.lock();
            match q.back_mut() {
                Some(last) if supersedes(last) => *last = msg,
                _ => q.push_back(msg),
            }
        }
        self.shared.notify.notify_one();
        Ok(())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.receiver.load(Ordering::Acquire)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Wakes a receiver waiting on an empty queue, so it sees the channel closed.
            self.shared.notify.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next message; `None` once the queue is empty and every sender is gone.
    /// Cancel-safe: a message is only taken by a call that returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            // Made before looking, so a send between the look and the wait still wakes it.
            let notified = self.shared.notify.notified();
            match self.shared.take() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => notified.await,
            }
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.shared.take()
    }
}

impl<T> Shared<T> {
    fn take(&self) -> Result<T, TryRecvError> {
        if let Some(msg) = self.queue.lock().pop_front() {
            return Ok(msg);
        }
        if self.senders.load(Ordering::Acquire) == 0 {
            // A last message may have been queued between the pop and the count.
            return self
                .queue
                .lock()
                .pop_front()
                .ok_or(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receiver.store(false, Ordering::Release);
        self.shared.queue.lock().clear();
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mailbox::Sender").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mailbox::Receiver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn messages_arrive_in_order_and_the_channel_closes_with_its_last_sender() {
        let (tx, mut rx) = channel();
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(3).unwrap();
        drop(tx);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "a sender remains");
        drop(tx2);
        assert_eq!(waiter.await.unwrap(), (Some(3), None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_receiver_wakes_on_send_and_a_dropped_recv_loses_nothing() {
        let (tx, mut rx) = channel::<u32>();
        // A recv cancelled by a timeout takes nothing.
        assert!(
            tokio::time::timeout(Duration::from_millis(5), rx.recv())
                .await
                .is_err()
        );
        tx.send(7).unwrap();
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = rx.recv() => unreachable!("the ready branch goes first"),
        }
        assert_eq!(rx.recv().await, Some(7));
    }

    #[test]
    fn send_replacing_replaces_only_what_it_supersedes_and_send_fails_without_receiver() {
        let (tx, mut rx) = channel();
        tx.send_replacing("a1", |l| l.starts_with('a')).unwrap();
        tx.send_replacing("a2", |l| l.starts_with('a')).unwrap();
        tx.send_replacing("b", |l| l.starts_with('b')).unwrap();
        tx.send_replacing("a3", |l| l.starts_with('a')).unwrap();
        assert_eq!(rx.try_recv(), Ok("a2"));
        assert_eq!(rx.try_recv(), Ok("b"));
        assert_eq!(rx.try_recv(), Ok("a3"));
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send("c"), Err("c"));
    }
}
