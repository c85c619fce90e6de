//! The Pareto front of (cost, latency) points, both to be minimized.

/// For each point, whether no other point is at least as good on both and better on one.
/// Equal points are all on the front.
pub fn front(points: &[(f64, f64)]) -> Vec<bool> {
    // Sort by cost, then latency; sweep keeping the best latency seen at strictly lower cost.
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a].0.total_cmp(&points[b].0).then(points[a].1.total_cmp(&points[b].1))
    });
    let mut on = vec![false; points.len()];
    let mut best_latency = f64::INFINITY;
    let mut k = 0;
    while k < order.len() {
        // A group of equal cost: its best latency is on the front if it beats every cheaper point.
        let cost = points[order[k]].0;
        let mut end = k;
        while end < order.len() && points[order[end]].0 == cost {
            end += 1;
        }
        let group_best = points[order[k]].1;
        for &i in &order[k..end] {
            on[i] = points[i].1 == group_best && group_best < best_latency;
        }
        best_latency = best_latency.min(group_best);
        k = end;
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_set() {
        // (cost, p95): a = (10, 100) front; b = (20, 50) front; c = (20, 80) dominated by b;
        // d = (30, 50) dominated by b; e = (40, 10) front; f = (5, 200) front; g = (40, 10) ties e.
        let pts = [
            (10.0, 100.0),
            (20.0, 50.0),
            (20.0, 80.0),
            (30.0, 50.0),
            (40.0, 10.0),
            (5.0, 200.0),
            (40.0, 10.0),
        ];
        assert_eq!(front(&pts), vec![true, true, false, false, true, true, true]);
    }

    #[test]
    fn matches_the_definition_on_a_grid() {
        let pts: Vec<(f64, f64)> =
            (0..40).map(|i| (f64::from(i % 7), f64::from((i * 13) % 11))).collect();
        let on = front(&pts);
        for (i, p) in pts.iter().enumerate() {
            let dominated =
                pts.iter().any(|q| q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1));
            assert_eq!(on[i], !dominated, "point {i} {p:?}");
        }
    }
}
