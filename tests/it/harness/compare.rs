//! Exact equality of two tables, independent of pgsync: both are streamed as text COPY in
//! primary-key order and compared line by line (every column, NULLs included), printing the
//! first differing rows.

use super::TestDb;
use std::io::{BufRead, BufReader};

/// Panics unless `table` has exactly the same rows in both databases.
pub fn assert_tables_equal(source: &TestDb, dest: &TestDb, table: &str, order_by: &str) {
    assert_tables_equal_but(source, dest, table, order_by, "true");
}

/// Panics unless the source's rows are exactly the destination's rows that match
/// `dest_filter` (an SQL condition: the rows a test expects the destination to hold besides).
pub fn assert_tables_equal_but(
    source: &TestDb,
    dest: &TestDb,
    table: &str,
    order_by: &str,
    dest_filter: &str,
) {
    let sql = |filter: &str| {
        format!("COPY (SELECT * FROM {table} WHERE {filter} ORDER BY {order_by}) TO STDOUT")
    };
    let mut a = source.client();
    let mut b = dest.client();
    let ra = BufReader::new(a.copy_out(&sql("true")).unwrap());
    let rb = BufReader::new(b.copy_out(&sql(dest_filter)).unwrap());
    let (mut la, mut lb) = (ra.lines(), rb.lines());
    let mut n = 0u64;
    loop {
        match (
            la.next().transpose().unwrap(),
            lb.next().transpose().unwrap(),
        ) {
            (None, None) => {
                assert!(
                    n > 0,
                    "{table} is empty on both sides: the comparison proves nothing"
                );
                break;
            }
            (x, y) if x == y => n += 1,
            (x, y) => panic!(
                "{table} differs at row {n} (in {order_by} order):\n  source: {}\n  dest:   {}",
                x.as_deref().unwrap_or("<end>"),
                y.as_deref().unwrap_or("<end>")
            ),
        }
    }
}

/// Row count of a table.
pub fn count(db: &TestDb, table: &str) -> i64 {
    db.scalar_i64(&format!("SELECT count(*) FROM {table}"))
}
