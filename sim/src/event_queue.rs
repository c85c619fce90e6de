//! The engine's queue of future events: a radix heap keyed by simulated time, with the
//! insertion order breaking ties (the engine's determinism contract: events at one instant come
//! out in the order they were scheduled).
//!
//! Why not `BinaryHeap`: with a thousand jobs running, every step completion paid a pop and a
//! push of `log₂ n` moves through a heap larger than the cache lines it touches (issue 15:
//! `BinaryHeap::pop` grew from 25 to 108 samples between the 1- and 500-runner profiles). A radix heap
//! uses what a discrete-event queue guarantees — nothing is ever scheduled before the last
//! event taken — to keep events in 64 buckets by the highest bit in which their time differs
//! from that last time. An event moves to a lower bucket at most 64 times in its life, and in
//! practice once or twice; taking the next event is a bit scan plus, now and then, one pass
//! over a bucket. (The `radix-heap` crate has no `peek`, which the engine needs to merge the
//! queue with the trace's arrivals and the fleet's wakeups, and no tie order.)
//!
//! The invariant: bucket `b` holds events whose time `t > last` has its highest bit differing
//! from `last` at position `b`, so every time in bucket `b` is below every time in bucket
//! `b + 1`; the events *at* `last` sit apart, in `at_last`. Each keeps insertion order (see
//! `advance`), so no event carries a sequence number.

use fleetsim_core::SimTime;

/// One queued event.
#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    at: u64,
    item: T,
}

/// Future events, taken earliest first; at one instant, in the order they were pushed.
#[derive(Debug)]
pub struct EventQueue<T> {
    /// The time of the last event taken (the queue's floor: nothing may be pushed below it).
    last: u64,
    /// The events at `last` not yet taken, from `head` on, in insertion order.
    at_last: Vec<Entry<T>>,
    head: usize,
    buckets: [Vec<Entry<T>>; 64],
    /// The earliest time in each bucket (`u64::MAX` when it is empty).
    mins: [u64; 64],
    /// Bit `b` set: bucket `b` is not empty.
    filled: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            last: 0,
            at_last: Vec::new(),
            head: 0,
            buckets: std::array::from_fn(|_| Vec::new()),
            mins: [u64::MAX; 64],
            filled: 0,
        }
    }
}

impl<T: Copy> EventQueue<T> {
    /// An empty queue with its floor at time 0.
    pub fn new() -> EventQueue<T> {
        EventQueue::default()
    }

    /// Schedules `item` at `at`, after every event already scheduled at `at`.
    ///
    /// # Panics
    /// If `at` is before the last event taken: a discrete-event engine never schedules into
    /// its own past, and the queue's order relies on it.
    pub fn push(&mut self, at: SimTime, item: T) {
        let at = at.as_ms();
        assert!(
            at >= self.last,
            "an event scheduled at {at} ms, before the one taken at {} ms",
            self.last
        );
        let entry = Entry { at, item };
        if at == self.last {
            self.at_last.push(entry);
        } else {
            self.put(entry);
        }
    }

    /// Files an event later than `last` in its bucket.
    fn put(&mut self, entry: Entry<T>) {
        let b = 63 - (entry.at ^ self.last).leading_zeros() as usize;
        self.buckets[b].push(entry);
        self.mins[b] = self.mins[b].min(entry.at);
        self.filled |= 1 << b;
    }

    /// The time of the earliest event, if any.
    pub fn peek_at(&self) -> Option<SimTime> {
        if self.head < self.at_last.len() {
            Some(SimTime(self.last))
        } else if self.filled == 0 {
            None
        } else {
            Some(SimTime(self.mins[self.filled.trailing_zeros() as usize]))
        }
    }

    /// Takes the earliest event (the first pushed among those at its instant).
    pub fn pop(&mut self) -> Option<(SimTime, T)> {
        if self.head == self.at_last.len() {
            self.at_last.clear();
            self.head = 0;
            if self.filled == 0 {
                return None;
            }
            self.advance();
        }
        let e = self.at_last[self.head];
        self.head += 1;
        Some((SimTime(e.at), e.item))
    }

    /// Moves the floor to the earliest time, in the first filled bucket, and spreads that
    /// bucket over the lower ones; its earliest events become `at_last`.
    ///
    /// Every bucket, and `at_last`, stays in insertion order without sorting: a push appends
    /// the newest event, and a bucket is spread only when it is the first filled one, so the
    /// buckets below it and `at_last` are empty and receive its events in its own order.
    fn advance(&mut self) {
        let b = self.filled.trailing_zeros() as usize;
        let mut spread = std::mem::take(&mut self.buckets[b]);
        self.last = self.mins[b];
        self.mins[b] = u64::MAX;
        self.filled &= !(1 << b);
        for entry in spread.drain(..) {
            if entry.at == self.last {
                self.at_last.push(entry);
            } else {
                self.put(entry);
            }
        }
        // Keep the bucket's allocation for its next events.
        self.buckets[b] = spread;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_at_one_instant_come_out_in_push_order_whatever_their_buckets() {
        let mut q = EventQueue::new();
        q.push(SimTime(8), 'a'); // bucket 3 from 0
        q.push(SimTime(5), 'b');
        q.push(SimTime(8), 'c');
        assert_eq!(q.pop(), Some((SimTime(5), 'b')));
        // From 5, time 8 differs in bit 3 again: 'd' joins the bucket after 'a' and 'c'.
        q.push(SimTime(8), 'd');
        q.push(SimTime(6), 'e');
        assert_eq!(q.peek_at(), Some(SimTime(6)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let at = |t, c| (SimTime(t), c);
        assert_eq!(order, vec![at(6, 'e'), at(8, 'a'), at(8, 'c'), at(8, 'd')]);
        assert_eq!(q.peek_at(), None);
    }

    #[test]
    #[should_panic(expected = "before the one taken")]
    fn an_event_in_the_past_is_refused() {
        let mut q = EventQueue::new();
        q.push(SimTime(10), ());
        q.pop();
        q.push(SimTime(9), ());
    }
}
