//! The engine's radix-heap event queue takes events in exactly the order of the binary heap
//! keyed by `(time, insertion)` it replaced, on random schedules that push at the current
//! instant, near it and far ahead, and move the clock on without taking events (as trace
//! arrivals and wakeups do).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fleetsim::event_queue::EventQueue;
use fleetsim_core::SimTime;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Schedule an event this far after the clock.
    Push(u64),
    /// Take the earliest event; the clock goes to its time.
    Pop,
    /// Move the clock this far, but not past the earliest event.
    Advance(u64),
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..4, 0u64..3_000, 0u64..10_000_000, Just(u64::MAX / 4)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => delay().prop_map(Op::Push), 3 => Just(Op::Pop), 1 => delay().prop_map(Op::Advance)]
}

proptest! {
    #[test]
    fn the_radix_queue_takes_events_in_the_binary_heaps_order(ops in prop::collection::vec(op(), 0..400)) {
        let mut radix = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Push(d) => {
                    seq += 1;
                    let at = now.saturating_add(d);
                    radix.push(SimTime(at), seq);
                    reference.push(Reverse((at, seq)));
                }
                Op::Pop => {
                    let want = reference.pop().map(|Reverse((at, seq))| (SimTime(at), seq));
                    prop_assert_eq!(radix.pop(), want);
                    if let Some((at, _)) = want {
                        now = at.as_ms();
                    }
                }
                Op::Advance(d) => {
                    let limit = reference.peek().map_or(u64::MAX, |Reverse((at, _))| *at);
                    now = now.saturating_add(d).min(limit);
                }
            }
            let want = reference.peek().map(|Reverse((at, _))| SimTime(*at));
            prop_assert_eq!(radix.peek_at(), want);
        }
        while let Some(Reverse((at, seq))) = reference.pop() {
            prop_assert_eq!(radix.pop(), Some((SimTime(at), seq)));
        }
        prop_assert_eq!(radix.pop(), None);
    }
}
