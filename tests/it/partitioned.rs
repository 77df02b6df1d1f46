//! Partitioned sources: synced as one logical table through the parent. A table partitioned
//! by its cursor has the cursor in its key; that used to fail every pass ("insufficient data
//! left in message": the cursor asked for twice from the COPY stream).

use crate::harness::{assert_tables_equal, Pgsync, TestDb};

#[test]
fn a_table_range_partitioned_by_its_cursor_with_a_default_partition_is_copied_exactly() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE events (id bigint, updated timestamptz NOT NULL, payload text,
           PRIMARY KEY (id, updated)) PARTITION BY RANGE (updated);
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE events_other PARTITION OF events DEFAULT;
         INSERT INTO events SELECT g, timestamptz '2024-06-01' + g * interval '17 minutes', 'p' || g
           FROM generate_series(1, 40000) g;
         ANALYZE events;",
    );
    let mut job = Pgsync::new(&src.url(), &dst.url(), "events").with(&["-c", "3000"]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("includes the cursor column \"updated\""),
        "{err}"
    );
    assert!(
        err.contains("CREATE INDEX ON public.events (\"updated\", \"id\")"),
        "{err}"
    );
    assert_tables_equal(&src, &dst, "events", "id, updated");
    // The default partition holds the rows before 2025.
    assert!(dst.scalar_i64("SELECT count(*) FROM events WHERE updated < '2025-01-01'") > 0);
    // New rows, up to now.
    src.exec(
        "INSERT INTO events SELECT g, now() - (43001 - g) * interval '1 second', 'n' || g
           FROM generate_series(40001, 43000) g",
    );
    job.run_ok("single", &["--lookback", "0"]);
    assert_tables_equal(&src, &dst, "events", "id, updated");
    job.run_ok("verify", &[]);
}

#[test]
fn a_list_partitioned_table_updated_in_place_is_copied_exactly() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE orders (id bigint, region text, updated timestamptz NOT NULL, amount numeric,
           PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
         CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
         CREATE TABLE orders_rest PARTITION OF orders DEFAULT;
         CREATE INDEX ON orders (updated, id, region);
         INSERT INTO orders SELECT g, (ARRAY['eu', 'us', 'asia'])[1 + g % 3],
           timestamptz '2026-01-01' + g * interval '1 second', g
           FROM generate_series(1, 30000) g;
         ANALYZE orders;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "orders").with(&["-c", "2500"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "orders", "id, region");
    src.exec("UPDATE orders SET amount = amount * 2, updated = now() WHERE id % 7 = 0");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "orders", "id, region");
    job.run_ok("verify", &[]);
}
