//! Fixtures: the prototype's `transactions` table with bursts of equal `updated` values,
//! a row of every interesting type, and a destination trigger like the prototype's
//! `user_balance` one (plus an audit of every firing).

use super::TestDb;

/// The prototype's table, empty, with its primary key (a destination prepared by hand).
pub fn transactions_table(db: &TestDb) {
    db.exec(
        "CREATE TABLE transactions (
           id uuid PRIMARY KEY, user_id uuid NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
           certified_by_user bigint, amount numeric(18,2) NOT NULL, status text NOT NULL)",
    );
}

/// The prototype's schema, `rows` rows; `updated` comes in bursts of `burst` equal values.
/// Every 20th row has a NULL `certified_by_user`.
pub fn transactions(db: &TestDb, rows: u64, burst: u64) {
    transactions_table(db);
    db.exec(&format!(
        "CREATE INDEX transactions_updated_id ON transactions (updated, id);
         INSERT INTO transactions
           SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad((g % 97)::text, 12, '0'))::uuid,
                  1500000000000 + g, 1500000000000 + (g / {burst}) * 1000,
                  CASE WHEN g % 20 = 0 THEN NULL ELSE 1500000000000 + g + 500 END,
                  round((random() * 2000 - 1000)::numeric, 2),
                  (ARRAY['APPROVED', 'BLOCKED', 'PENDING'])[1 + g % 3]
           FROM generate_series(1, {rows}) g;
         ANALYZE transactions;"
    ));
}

/// Inserts `n` new rows and updates every `every`-th existing row; like `updated = now()`,
/// both get cursor values above everything already in the table.
pub fn churn(db: &TestDb, n: u64, every: u64) {
    db.exec(&format!(
        "UPDATE transactions SET updated = (SELECT max(updated) FROM transactions) + 1 + abs(hashtext(id::text)) % 100,
           amount = amount + 1, status = 'CHANGED'
           WHERE ('x' || substr(md5(id::text), 1, 8))::bit(32)::int % {every} = 0;
         INSERT INTO transactions
           SELECT gen_random_uuid(), gen_random_uuid(), 1, (SELECT max(updated) FROM transactions) + 1 + g % 7, NULL, 1.5, 'NEW'
           FROM generate_series(1, {n}) g;"
    ));
}

/// The prototype's `user_balance` trigger on the destination, plus an audit row per firing.
pub fn balance_trigger(dest: &TestDb) {
    transactions_table(dest);
    dest.exec(
        "CREATE TABLE user_balance (user_id uuid PRIMARY KEY, balance numeric(18,2) NOT NULL);
         CREATE TABLE trigger_audit (id uuid NOT NULL, op text NOT NULL);
         CREATE FUNCTION user_balance_trigger() RETURNS trigger AS $$
         BEGIN
           INSERT INTO trigger_audit VALUES (NEW.id, TG_OP);
           INSERT INTO user_balance AS t (user_id, balance) VALUES (NEW.user_id, NEW.amount)
             ON CONFLICT (user_id) DO UPDATE SET balance = t.balance + NEW.amount;
           RETURN NEW;
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER balance_ins AFTER INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION user_balance_trigger();
         CREATE TRIGGER balance_upd AFTER UPDATE ON transactions FOR EACH ROW EXECUTE FUNCTION user_balance_trigger();
         CREATE FUNCTION audit_before() RETURNS trigger AS $$
         BEGIN INSERT INTO trigger_audit VALUES (NEW.id, 'BEFORE ' || TG_OP); RETURN NEW; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER audit_before BEFORE INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION audit_before();",
    );
}

/// `t (id int PRIMARY KEY, updated bigint, v text)` with `rows` rows, id = updated.
pub fn ints(db: &TestDb, rows: u64) {
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, updated bigint NOT NULL, v text);
         CREATE INDEX ON t (updated, id);
         INSERT INTO t SELECT g, g, 'v' || g FROM generate_series(1, {rows}) g;"
    ));
}

/// Starts a paced fresh load of `fixtures::ints` (1M rows: more than the read-ahead holds),
/// runs `update` once 1,000 rows are in — moving already-copied rows to cursors the load has
/// not reached — and waits for the load to succeed.
pub fn move_rows_mid_load(src: &TestDb, dst: &TestDb, update: &str) {
    ints(src, 1_000_000);
    let job = super::Pgsync::new(&src.url(), &dst.url(), "t").with(&[
        "-c",
        "5000",
        "--max-rate",
        "200000",
    ]);
    let child = job.spawn("single", &[], &[]);
    super::wait_until("the load to start", || {
        super::count_or_zero(dst, "SELECT count(*) FROM t") >= 1000
    });
    src.exec(update);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
