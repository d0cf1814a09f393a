//! The GC workload's rows: which figures go where and when the bound is met.

use super::*;

/// `ops` operations in one second, each taking `ms` milliseconds (a few take `slow_ms`).
fn outcome(ops: u64, ms: u64, slow_ms: u64) -> Outcome {
    let mut o = Outcome::empty().unwrap();
    for n in 0..ops {
        let took = if n % 50 == 0 { slow_ms } else { ms };
        o.latency.record(took * 1000).unwrap();
    }
    o.ops = ops;
    o.elapsed = Duration::from_secs(1);
    o
}

fn tally(push: Outcome, pull: Outcome) -> Tally {
    Tally {
        push,
        pull,
        delete: outcome(10, 1, 1),
        gc: Collections {
            runs: 3,
            blobs: 30,
            bytes: 4096,
            ..Collections::default()
        },
    }
}

#[test]
fn gc_rows_have_no_registry2_figure_and_are_bounded_by_twice_the_p99_without_gc() {
    let tallies = Tallies {
        off: tally(outcome(100, 20, 30), outcome(1000, 2, 5)),
        looped: tally(outcome(100, 20, 400), outcome(1000, 2, 5)),
        own: tally(outcome(100, 20, 50), outcome(1000, 2, 11)),
        reference: tally(outcome(20, 100, 200), outcome(100, 30, 90)),
    };
    let rows = table_rows(&tallies, Duration::from_millis(2500));
    let met: Vec<Option<bool>> = rows.iter().map(|r| r.met).collect();
    assert_eq!(
        met,
        [None, Some(false), Some(true), None, Some(true), Some(false)]
    );
    for (n, row) in rows.iter().enumerate() {
        let without_gc = n % 3 == 0;
        assert_eq!(row.registry2.is_some(), without_gc, "{}", row.workload);
        if !without_gc {
            assert!(row.note.contains("no online GC"), "{}", row.note);
        }
    }
    assert!(rows[1].note.contains("GC: 3 runs"), "{}", rows[1].note);
    assert!(rows[1].target.contains("60 ms"), "{}", rows[1].target);
}

#[test]
fn a_failed_operation_misses_the_bound() {
    let mut with_errors = outcome(100, 20, 30);
    with_errors.errors = 1;
    with_errors.first_error = Some("manifest PUT: answered 500".into());
    let tallies = Tallies {
        off: tally(outcome(100, 20, 30), outcome(1000, 2, 5)),
        looped: tally(with_errors, outcome(1000, 2, 5)),
        own: tally(outcome(100, 20, 30), outcome(1000, 2, 5)),
        reference: tally(outcome(20, 100, 200), outcome(100, 30, 90)),
    };
    let rows = table_rows(&tallies, Duration::from_millis(2500));
    assert_eq!(rows[1].met, Some(false));
    assert!(
        rows[1].note.contains("1 failed operations"),
        "{}",
        rows[1].note
    );
    assert_eq!(rows[2].met, Some(true));
}
