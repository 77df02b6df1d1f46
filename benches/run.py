#!/usr/bin/env python3
"""pgsync benchmark: one run, alternating A/B, medians and ratios against the psql COPY pipeline.

Usage: benches/run.py [--rows N] [--repeats K] [--cases fresh,existing,incremental,verify,jobs,rss,tls,
                      friendly,wan1,wan10,continuous,othertx,scattered,tables,diff] [--jobs N]

Generates the prototype's `transactions` table (random uuid keys, bursts of equal `updated`
values, 5% NULL certified_by_user) in database pgsync_bench_src on the local server (or
PGHOST/PGPORT/PGUSER) as a field table: rows inserted in random order, then 30% updated in
place (the heap's order is unrelated to `updated`), indexed on `updated` alone. Builds
pgsync in release mode, and times, alternating each pgsync run with its baseline:
  fresh        pgsync single into a destination it creates   vs psql binary COPY pipeline into a table with its PK,
                                                                and the pipeline into a PK-less table + ADD PRIMARY KEY;
                                                                also the share of pgsync's pass spent planning and
                                                                checkpointing (its -v timings line)
  existing     pgsync single into an existing empty table with its PK  vs the pipeline into a table with its PK
  incremental  pgsync single after 10% of rows changed          vs staging COPY + INSERT ... ORDER BY pk ON CONFLICT ... IS DISTINCT FROM
               (both from the same start: a destination freshly loaded by pgsync with the rows before the
               change, both tables vacuumed and analysed and a checkpoint done before each timed run)
  verify       pgsync verify on equal tables                    vs per-window SELECT count(*), sum(hash_record_extended(t, 0))
                                                                (~100k rows a window) on both sides at once, and one whole-table
                                                                query per side; pgsync verify --text-hash vs the same with
                                                                hashtextextended(t::text, 0)
  jobs         pgsync single --jobs 1/2/4 (existing PK table, created destination) vs the pipeline,
               and two pipelines at once on the two halves of the table
  rss          peak RSS of pgsync single (/usr/bin/time -v)
  tls          pgsync single (fresh, destination created) with --sslmode require vs --sslmode disable,
               and the psql pipeline with PGSSLMODE=require vs disable (the cost of TLS on this machine)
  friendly     fresh, destination created, on the friendly table (rows inserted in cursor order,
               index on (updated, id)) vs the pipeline: what earlier figures measured
  wan1, wan10  each database behind its own latency proxy (benches/latency-proxy, 0.5 / 5 ms each
               way: 1 / 10 ms round trips), pgsync and the baselines through the same proxies:
               fresh (destination created) vs the pipeline into the keyed table and into a
               PK-less table + ADD PRIMARY KEY (the limit); incremental 10% vs the hand-written
               staging + ordered upsert
  continuous   pgsync continuous (--delay 5) for 60 s while a writer updates ~2,000 rows/s (cursor =
               epoch ms at write time): rows read per pass / rows changed since the previous pass,
               and the lag (source max cursor - destination max cursor, sampled 4x a second)
  scattered    verify with 300 differences scattered over the table (100 changed, 100 missing, 100
               extra in the destination) vs verify on equal tables and one whole-table count + hash
               query per side; and the --deletes sweep after 0.1% and 1% of the source's rows were
               deleted (its own time, from its output line) vs the same whole-table queries
  tables       20 field tables summing to --rows (one of 60%, the rest from 5k rows up) by one
               `pgsync single 'public.*' --jobs 2` vs one table of as many rows (--jobs 2), both into
               a fresh destination; the tables' planning summed as a share of the run
  diff         pgsync single --mode diff after 0, 0.1% and 1% of the source's rows changed (a third updated,
               deleted, inserted) vs one whole-table count + hash query per side at once; at 1% also vs
               re-copying the table with the psql pipeline (the case changes the source table: run it last)
  othertx      a pass right after a fresh load while another database on the server holds a
               write transaction open: rows read (should be the lookback band, not the table)

Every other case runs at the default sslmode, prefer, as libpq does: on a server with ssl = on
(the local one), pgsync and psql both encrypt.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pgsync")
SRC, DST = "pgsync_bench_src", "pgsync_bench_dst"
DDL = """CREATE TABLE transactions (
  id uuid PRIMARY KEY, user_id uuid NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
  certified_by_user bigint, amount numeric(18,2) NOT NULL, status text NOT NULL)"""
DDL_NOPK = DDL.replace(" PRIMARY KEY", "")
COLS = "id, user_id, created, updated, certified_by_user, amount, status"


def psql(db, sql, capture=False):
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", db, "-c", sql],
                       check=True, capture_output=True, text=True)
    return r.stdout.strip() if capture else None


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def generate(rows, db=None, friendly=False, table="transactions", fresh_db=True):
    """The source table: by default a field table (random physical order, 30% updated in
    place, index on the cursor alone); `friendly`: inserted in cursor order, (updated, id) index."""
    db = db or SRC
    if fresh_db:
        psql("postgres", f"DROP DATABASE IF EXISTS {db}")
        psql("postgres", f"CREATE DATABASE {db}")
    psql(db, DDL.replace("TABLE transactions", f"TABLE {table}"))
    order = "" if friendly else "ORDER BY random()"
    psql(db, f"""INSERT INTO {table}
      SELECT gen_random_uuid(), gen_random_uuid(), 1533945600000 + g, 1533945600000 + (g / 40) * 1000,
             CASE WHEN random() < 0.05 THEN NULL ELSE 1533945600000 + g + 500 END,
             round((random() * 2000 - 1000)::numeric, 2), (ARRAY['APPROVED','BLOCKED','PENDING'])[1 + g % 3]
      FROM generate_series(1, {rows}) g {order}""")
    if friendly:
        psql(db, f"CREATE INDEX {table}_updated_id ON {table} (updated, id)")
    else:
        psql(db, f"UPDATE {table} SET updated = updated + 500, status = 'UPDATED' WHERE random() < 0.3")
        psql(db, f"CREATE INDEX {table}_updated ON {table} (updated)")
    psql(db, f"VACUUM ANALYZE {table}")


def reset_dst(create=None):
    psql("postgres", f"DROP DATABASE IF EXISTS {DST} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {DST}")
    if create:
        psql(DST, create)


def both(sql):
    """Runs `sql` on the source and the destination at once."""
    procs = [subprocess.Popen(["psql", "-X", "-At", "-d", db, "-c", sql], stdout=subprocess.DEVNULL)
             for db in (SRC, DST)]
    for p in procs:
        assert p.wait() == 0


def pipeline(sslmode=None, src_port=None, dst_port=None, src=None):
    env = f"PGSSLMODE={sslmode} " if sslmode else ""
    sp = f"-p {src_port} " if src_port else ""
    dp = f"-p {dst_port} " if dst_port else ""
    sh(f"{env}psql -X {sp}-d {src or SRC} -c 'COPY transactions TO STDOUT (FORMAT binary)' | "
       f"{env}psql -X {dp}-d {DST} -c 'COPY transactions FROM STDIN (FORMAT binary)'")


EXTRA = []  # --jobs N given to the runner: passed to every pgsync single of the other cases


def url(db, port):
    return f"postgresql://{os.environ['PGUSER']}@{os.environ['PGHOST']}:{port}/{db}"


def pgsync(state, *extra, jobs=None, overhead=None, src=None, dst=None):
    """pgsync single; with a list as `overhead`, runs with -v and appends the share of the
    pass spent planning and checkpointing (from its timings line)."""
    opts = EXTRA if jobs is None else ["--jobs", str(jobs)]
    level = "--quiet" if overhead is None else "-v"
    r = subprocess.run([BIN, "single", level, "--state-dir", state, *opts, *extra, src or SRC, dst or DST, "transactions"],
                       check=True, stdout=subprocess.DEVNULL, stderr=None if overhead is None else subprocess.PIPE,
                       text=True)
    if overhead is not None:
        line = next(l for l in r.stderr.splitlines() if " timings: " in l)
        overhead.append(float(line.split("planning and checkpoints ")[1].split("%")[0]))


def case_fresh(repeats, results):
    a, b, c, overhead = [], [], [], []
    for _ in range(repeats):
        reset_dst(DDL)
        a.append(timed(pipeline))
        reset_dst(DDL_NOPK)
        c.append(timed(lambda: (pipeline(), psql(DST, "ALTER TABLE transactions ADD PRIMARY KEY (id)"))))
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            b.append(timed(lambda: pgsync(st, overhead=overhead)))
    results["fresh: pgsync single, destination created"] = (b, a, c)
    results["planning and checkpoints, fresh pass"] = overhead


def case_existing(repeats, results):
    a, b = [], []
    for _ in range(repeats):
        reset_dst(DDL)
        a.append(timed(pipeline))
        reset_dst(DDL)
        with tempfile.TemporaryDirectory() as st:
            b.append(timed(lambda: pgsync(st)))
    results["existing empty table with PK"] = (b, a, None)


def case_incremental(repeats, results):
    a, b = [], []
    for i in range(repeats):
        pg, hand = incremental_pair(i)
        b.append(pg)
        a.append(hand)
    results["incremental, 10% changed"] = (b, a, None)


CHANGED = "(hashtext(id::text) % 10) = 0"


def change_source(i, sign):
    """Repeat i's change of 10% of the source's rows (sign -1: undone); their cursor moves."""
    op = "+" if sign > 0 else "-"
    psql(SRC, f"UPDATE transactions SET amount = amount {op} 1, updated = updated {op} 100000000000 * {i + 1} "
              f"WHERE {CHANGED}")


def settle():
    """What autovacuum does within a minute of a load or an update, done before each timed
    incremental run: both tables vacuumed and analysed, then a checkpoint, so that neither
    run meets a vacuum or a checkpoint the other did not."""
    both("VACUUM (ANALYZE) transactions")
    psql(SRC, "CHECKPOINT")


def incremental_pair(i, s_url=None, d_url=None, src_port=None, dst_port=None):
    """One repeat of an incremental case: pgsync's pass after its own fresh load, and the
    hand-written sync from the same starting point (the destination freshly loaded by pgsync
    with the rows before the change, settled), in alternating order; returns both times."""
    def pgsync_run():
        with tempfile.TemporaryDirectory() as st:
            reset_dst()
            pgsync(st, src=s_url, dst=d_url)  # the same job as the timed pass
            change_source(i, +1)
            settle()
            return timed(lambda: pgsync(st, src=s_url, dst=d_url))

    def hand_run():
        with tempfile.TemporaryDirectory() as st:
            reset_dst()
            pgsync(st)  # untimed, direct: the destination pgsync's pass starts from
        change_source(i, +1)
        since = psql(SRC, f"SELECT min(updated) FROM transactions WHERE {CHANGED}", capture=True)
        settle()
        return timed(lambda: manual_upsert(since, src_port, dst_port))

    if i % 2 == 0:
        pg = pgsync_run()
        change_source(i, -1)
        hand = hand_run()
    else:
        hand = hand_run()
        change_source(i, -1)
        pg = pgsync_run()
    return pg, hand


def manual_upsert(since, src_port=None, dst_port=None):
    """The hand-written incremental sync: COPY the changed rows out, into a staging table,
    and one ordered upsert that skips equal rows."""
    sp = f"-p {src_port} " if src_port else ""
    dp = f"-p {dst_port} " if dst_port else ""
    sh(f"psql -X {sp}-d {SRC} -c \"COPY (SELECT {COLS} FROM transactions WHERE updated >= {since}) TO STDOUT (FORMAT binary)\" | "
       f"psql -X {dp}-d {DST} -c 'CREATE UNLOGGED TABLE stage (LIKE transactions)' "
       f"-c 'COPY stage FROM STDIN (FORMAT binary)' "
       f"-c 'INSERT INTO transactions AS t SELECT * FROM stage ORDER BY id ON CONFLICT (id) DO UPDATE SET "
       f"user_id = EXCLUDED.user_id, created = EXCLUDED.created, updated = EXCLUDED.updated, "
       f"certified_by_user = EXCLUDED.certified_by_user, amount = EXCLUDED.amount, status = EXCLUDED.status "
       f"WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*)' -c 'DROP TABLE stage'")


def window_queries(expr, rows_per_window=100_000):
    """The hand-written per-window check: one query per ~100k-row window of `updated`
    (bounds from the column's histogram), count and hash sum."""
    bounds = [int(b) for b in psql(SRC, "SELECT unnest(histogram_bounds::text::bigint[]) FROM pg_stats "
                                        "WHERE tablename = 'transactions' AND attname = 'updated'", capture=True).split()]
    rows = int(float(psql(SRC, "SELECT reltuples FROM pg_class WHERE relname = 'transactions'", capture=True)))
    step = max(1, round(rows_per_window / (rows / max(len(bounds) - 1, 1))))
    cuts = bounds[step:-1:step]
    edges = [None] + cuts + [None]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        cond = " AND ".join(c for c in (lo is not None and f"updated > {lo}", hi is not None and f"updated <= {hi}") if c)
        out.append(f"SELECT count(*), sum({expr}) FROM transactions t WHERE {cond or 'true'};")
    return "\n".join(out), len(out)


def case_verify(repeats, results):
    """pgsync verify on equal tables vs the hand-written per-window hash queries (one per ~100k
    rows, index range scans) on both sides at once, and vs one whole-table query per side (no
    windows: the floor). Record hash (pgsync's default for built-in types) and text hash."""
    reset_dst()
    with tempfile.TemporaryDirectory() as st:
        pgsync(st)
        for label, expr, extra in (
                ("record hash", "hash_record_extended(t, 0)", []),
                ("text hash", "hashtextextended(t::text, 0)", ["--text-hash"])):
            script, windows = window_queries(expr)
            whole = f"SELECT count(*), sum({expr}) FROM transactions t"
            def verify():
                subprocess.run([BIN, "verify", "--quiet", "--state-dir", st, *extra, SRC, DST, "transactions"],
                               check=True, stdout=subprocess.DEVNULL)
            a, b, c = [], [], []
            for _ in range(repeats):
                a.append(timed(lambda: both(script)))
                c.append(timed(lambda: both(whole)))
                b.append(timed(verify))
            results[f"verify, equal tables, {label}"] = (b, a, c)
        print(f"(hand-written check: {windows} windows per side)", file=sys.stderr)


def case_jobs(repeats, results):
    """--jobs: pgsync with 1, 2 and 4 workers into an existing empty PK table and into a
    destination it creates, alternating with the pipeline (and two pipelines at once, each
    on half of the cursor range, for what parallelism can give on this machine)."""
    mid = psql(SRC, "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY updated) FROM transactions", capture=True)
    def halves():
        procs = [subprocess.Popen(
            f"psql -X -d {SRC} -c \"COPY (SELECT * FROM transactions WHERE {w}) TO STDOUT (FORMAT binary)\" | "
            f"psql -X -d {DST} -c 'COPY transactions FROM STDIN (FORMAT binary)'", shell=True, stdout=subprocess.DEVNULL)
            for w in (f"updated <= {mid}", f"updated > {mid}")]
        for p in procs:
            assert p.wait() == 0
    for target, ddl in (("existing PK table", DDL), ("destination created", None)):
        base, two, runs = [], [], {1: [], 2: [], 4: []}
        for _ in range(repeats):
            if ddl:
                reset_dst(ddl)
                base.append(timed(pipeline))
                reset_dst(ddl)
                two.append(timed(halves))
            else:
                reset_dst(DDL)
                base.append(timed(pipeline))
            for jobs in runs:
                reset_dst(ddl)
                with tempfile.TemporaryDirectory() as st:
                    runs[jobs].append(timed(lambda: pgsync(st, jobs=jobs)))
        for jobs, times in runs.items():
            results[f"jobs {jobs}, {target}"] = (times, base, None)
        if two:
            results[f"two psql pipelines at once, {target}"] = (two, base, None)


def case_tls(repeats, results):
    plain, tls, pipe_plain, pipe_tls = [], [], [], []
    for _ in range(repeats):
        for mode, out in (("disable", plain), ("require", tls)):
            reset_dst()
            with tempfile.TemporaryDirectory() as st:
                out.append(timed(lambda: pgsync(st, "--sslmode", mode)))
        for mode, out in (("disable", pipe_plain), ("require", pipe_tls)):
            reset_dst(DDL)
            out.append(timed(lambda: pipeline(mode)))
    results["tls: pgsync require vs disable"] = (tls, plain, None)
    results["tls: psql pipeline require vs disable"] = (pipe_tls, pipe_plain, None)


def case_rss(rows, results):
    """Peak RSS of pgsync single (the runner's --jobs), and with --jobs 4."""
    for opts in (EXTRA, ["--jobs", "4"]):
        if opts == ["--jobs", "4"] and EXTRA == opts:
            continue
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            r = subprocess.run(["/usr/bin/time", "-v", BIN, "single", "--quiet", "--state-dir", st, *opts, SRC, DST,
                                "transactions"], capture_output=True, text=True, check=True)
        kb = next(int(l.split(":")[1]) for l in r.stderr.splitlines() if "Maximum resident set size" in l)
        jobs = opts[1] if opts else "1"
        results[f"peak RSS at {rows} rows, --jobs {jobs}"] = kb


PROXY = os.path.join(ROOT, "benches", "latency-proxy", "target", "release", "latency-proxy")


class Proxies:
    """Two latency proxies, one in front of each database (the same local server), each
    delaying both directions by `one_way_ms`."""
    def __init__(self, one_way_ms, base_port):
        port = int(os.environ.get("PGPORT", "5432"))
        target = f"{os.environ['PGHOST']}:{port}"
        self.src_port, self.dst_port = base_port, base_port + 1
        self.procs = [subprocess.Popen([PROXY, f"127.0.0.1:{p}", target, str(one_way_ms)], stdout=subprocess.PIPE,
                                       text=True) for p in (self.src_port, self.dst_port)]
        for p in self.procs:
            p.stdout.readline()  # "listening on ..."

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()


def case_wan(one_way_ms, repeats, results):
    rtt = f"{2 * one_way_ms:g} ms"
    px = Proxies(one_way_ms, 6601)
    try:
        s_url, d_url = url(SRC, px.src_port), url(DST, px.dst_port)
        through = dict(src_port=px.src_port, dst_port=px.dst_port)
        a, b, c = [], [], []
        for _ in range(repeats):
            reset_dst(DDL)
            a.append(timed(lambda: pipeline(**through)))
            reset_dst(DDL_NOPK)
            c.append(timed(lambda: (pipeline(**through), sh(f"psql -X -p {px.dst_port} -d {DST} -c 'ALTER TABLE transactions ADD PRIMARY KEY (id)'"))))
            reset_dst()
            with tempfile.TemporaryDirectory() as st:
                b.append(timed(lambda: pgsync(st, src=s_url, dst=d_url)))
        results[f"fresh, {rtt} round trip, destination created"] = (b, a, c)
        a, b = [], []
        for i in range(repeats):
            pg, hand = incremental_pair(i, s_url, d_url, px.src_port, px.dst_port)
            b.append(pg)
            a.append(hand)
        results[f"incremental, 10% changed, {rtt} round trip"] = (b, a, None)
    finally:
        px.close()


def case_friendly(rows, repeats, results):
    friendly = SRC + "_friendly"
    generate(rows, friendly, friendly=True)
    a, b = [], []
    for _ in range(repeats):
        reset_dst(DDL)
        a.append(timed(lambda: pipeline(src=friendly)))
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            b.append(timed(lambda: pgsync(st, src=friendly)))
    results["friendly table (cursor order), destination created"] = (b, a, None)
    psql("postgres", f"DROP DATABASE IF EXISTS {friendly}")


WRITER = """DO $$ BEGIN LOOP
  UPDATE transactions SET amount = amount + 1, updated = (extract(epoch from clock_timestamp()) * 1000)::bigint
   WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (0.05) LIMIT 100);
  COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$"""


def case_continuous(results, seconds=60, delay=5):
    """continuous at its default --delay (5 s) under a steady writer: rows read per pass
    against rows changed since the previous pass, and the lag. Runs last: the writer changes
    the source table."""
    import re, threading
    # The incremental cases moved cursors years ahead; a writer stamping the clock must write
    # the largest cursors, as in production.
    psql(SRC, "UPDATE transactions SET updated = 1533945600000 WHERE updated > 1533945600000 + 60000000000")
    reset_dst()
    with tempfile.TemporaryDirectory() as st:
        pgsync(st)
        writer = subprocess.Popen(["psql", "-X", "-q", "-d", SRC, "-c", WRITER], stdout=subprocess.DEVNULL,
                                  stderr=None)
        time.sleep(1)
        sync = subprocess.Popen([BIN, "continuous", "-v", "--delay", str(delay), "--state-dir", st, SRC, DST,
                                 "transactions"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines, lags = [], []
        reader = threading.Thread(target=lambda: lines.extend(sync.stdout), daemon=True)
        reader.start()
        start = time.time()
        while time.time() - start < seconds:
            s = int(psql(SRC, "SELECT max(updated) FROM transactions", capture=True))
            d = int(psql(DST, "SELECT max(updated) FROM transactions", capture=True) or 0)
            if time.time() - start > 3 * delay:  # past the first passes
                lags.append(max(0, s - d) / 1000)
            time.sleep(0.25)
        changed_per_s = None
        sync.send_signal(2)
        sync.wait()
        writer.terminate()
        psql("postgres", f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{SRC}' "
                         f"AND query LIKE 'DO $$%'")
        reader.join(timeout=5)
    passes = [(int(m.group(1)), int(m.group(2))) for l in lines
              for m in [re.search(r"pass \d+ done: (\d+) rows read, (\d+) rows written", l)] if m]
    steady = passes[2:] or passes
    ratios = [r / max(w, 1) for r, w in steady]
    lags.sort()
    results["continuous: rows read / rows changed per pass"] = ("ratio", ratios,
        f"{len(passes)} passes, median {statistics.median([w for _, w in steady]):.0f} rows changed a pass")
    results["continuous: lag (source - destination max cursor)"] = ("lag", lags, f"--delay {delay}")


def case_scattered(repeats, results):
    """verify's drill-down with scattered differences, and the --deletes sweep."""
    import re
    whole = "SELECT count(*), sum(hash_record_extended(t, 0)) FROM transactions t"
    def verify(st, expect):
        r = subprocess.run([BIN, "verify", "--quiet", "--state-dir", st, SRC, DST, "transactions"],
                           stdout=subprocess.DEVNULL)
        assert r.returncode == expect, r.returncode
    reset_dst()
    equal, scattered, floor = [], [], []
    with tempfile.TemporaryDirectory() as st:
        pgsync(st)
        for _ in range(repeats):
            equal.append(timed(lambda: verify(st, 0)))
            floor.append(timed(lambda: both(whole)))
        psql(DST, "UPDATE transactions SET amount = amount + 1 WHERE id IN (SELECT id FROM transactions ORDER BY md5(id::text) LIMIT 100)")
        psql(DST, "DELETE FROM transactions WHERE id IN (SELECT id FROM transactions ORDER BY md5(id::text) DESC LIMIT 100)")
        psql(DST, "INSERT INTO transactions SELECT gen_random_uuid(), user_id, created, updated, certified_by_user, amount, 'X' "
                  "FROM transactions ORDER BY md5(id::text || 'x') LIMIT 100")
        for _ in range(repeats):
            scattered.append(timed(lambda: verify(st, 1)))
    results["verify, 300 scattered differences"] = ("vs", scattered, equal, "equal-tables verify")
    results["verify, equal tables (this run)"] = ("vs", equal, floor, "one whole-table query per side")
    for share in (0.001, 0.01):
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            pgsync(st)
            psql(SRC, f"DELETE FROM transactions WHERE random() < {share}")
            r = subprocess.run([BIN, "single", "--deletes", "--state-dir", st, SRC, DST, "transactions"],
                               capture_output=True, text=True, check=True)
            m = re.search(r"deletes: (\d+) rows deleted .* in ([0-9.]+)s", r.stdout)
            sweep = [float(m.group(2))]
        results[f"--deletes sweep, {share:.1%} deleted ({m.group(1)} rows)"] = ("vs", sweep, floor,
                                                                         "one whole-table query per side")


def case_diff(repeats, results):
    """--mode diff after 0, 0.1% and 1% of the source's rows changed (a third updated, a
    third deleted, a third inserted, at random), alternating with one whole-table count +
    hash query per side at once (the floor: what one comparison costs); at 1% also the
    re-copy of the table into its keyed destination (the psql pipeline)."""
    import re
    whole = "SELECT count(*), sum(hash_record_extended(t, 0)) FROM transactions t"
    def change(share):
        third = share / 3
        psql(SRC, f"UPDATE transactions SET amount = amount + 1, status = 'DIFF' WHERE random() < {third}")
        psql(SRC, f"DELETE FROM transactions WHERE random() < {third}")
        psql(SRC, f"INSERT INTO transactions SELECT gen_random_uuid(), user_id, created, updated, certified_by_user, amount, 'NEW' "
                  f"FROM transactions WHERE random() < {third}")
    reset_dst()
    lines = []
    with tempfile.TemporaryDirectory() as st:
        def diff():
            r = subprocess.run([BIN, "single", "--quiet", "--mode", "diff", "--state-dir", st, SRC, DST, "transactions"],
                               capture_output=True, text=True, check=True)
            lines.append(next(l for l in r.stdout.splitlines() if " diff: " in l))
        diff()
        for share in (0, 0.001, 0.01):
            runs, floor = [], []
            for _ in range(repeats):
                change(share)
                runs.append(timed(diff))
                floor.append(timed(lambda: both(whole)))
            m = re.search(r"(\d+) rows written, (\d+) deleted", lines[-1])
            results[f"diff pass, {share:.1%} changed ({m.group(1)}+{m.group(2)} rows)"] = (
                "vs", runs, floor, "one whole-table count+hash query per side")
            if share == 0.01:
                recopy = []
                for _ in range(repeats):
                    reset_dst(DDL)
                    recopy.append(timed(pipeline))
                results["diff pass, 1% changed, vs re-copying"] = ("vs", runs, recopy, "psql pipeline into the keyed table")
    psql(SRC, "DELETE FROM transactions WHERE status IN ('NEW')")
    print("\n".join(lines[-3:]), file=sys.stderr)


def case_othertx(results):
    """A pass right after a fresh load while another database holds a write transaction open."""
    other = "pgsync_bench_other"
    psql("postgres", f"DROP DATABASE IF EXISTS {other}")
    psql("postgres", f"CREATE DATABASE {other}")
    psql(other, "CREATE TABLE busy (n int)")
    holder = subprocess.Popen(["psql", "-X", "-q", "-d", other, "-c",
                               "BEGIN; INSERT INTO busy VALUES (1); SELECT pg_sleep(600)"], stdout=subprocess.DEVNULL)
    time.sleep(1)
    reset_dst()
    with tempfile.TemporaryDirectory() as st:
        pgsync(st)
        r = subprocess.run([BIN, "single", "-v", "--state-dir", st, SRC, DST, "transactions"],
                           capture_output=True, text=True, check=True)
    holder.kill()
    holder.wait()
    psql("postgres", f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
    line = next(l for l in (r.stdout + r.stderr).splitlines() if " done: " in l)
    results["pass after a load, other database writing"] = ("text", line.split(" done: ")[1], "")


TABLES_DB = "pgsync_bench_tables"


def case_tables(rows, repeats, results):
    """20 field tables summing to `rows` (one of 60%, 19 from 5k rows up, ~2% to ~6% each)
    copied by one `pgsync single 'public.*' --jobs 2` vs the single-table copy of the same
    number of rows in one table (--jobs 2 too), alternating, destinations created; and the
    tables' planning summed (from their -v timings lines) as a share of the set's run."""
    big = rows * 6 // 10
    rest = rows - big
    small = [5000 + i * (2 * (rest // 19 - 5000)) // 18 for i in range(19)]
    small[-1] += rest - sum(small)
    psql("postgres", f"DROP DATABASE IF EXISTS {TABLES_DB}")
    psql("postgres", f"CREATE DATABASE {TABLES_DB}")
    for i, n in enumerate([big] + small):
        generate(n, db=TABLES_DB, table=f"t{i:02d}", fresh_db=False)
    one, many, planning = [], [], []
    for _ in range(repeats):
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            one.append(timed(lambda: pgsync(st, jobs=2)))
        reset_dst()
        with tempfile.TemporaryDirectory() as st:
            t = time.perf_counter()
            r = subprocess.run([BIN, "single", "-v", "--progress-interval", "3600", "--state-dir", st, "--jobs", "2",
                                TABLES_DB, DST, "public.*"], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - t
            many.append(wall)
            ms = [float(l.split("timings: planning ")[1].split(" ms")[0]) for l in r.stderr.splitlines()
                  if "timings: planning " in l]
            assert len(ms) == 20, r.stderr[-2000:]
            planning.append(100 * sum(ms) / 1000 / wall)
    results["tables: 20 tables, --jobs 2, vs one table of as many rows"] = ("vs", many, one, "one table")
    results["planning of the 20 tables, summed"] = planning


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="fresh,existing,incremental,verify,jobs,rss,tls")
    ap.add_argument("--jobs", type=int, default=1, help="--jobs for pgsync in the fresh, existing, incremental and rss cases")
    args = ap.parse_args()
    if args.jobs != 1:
        EXTRA.extend(["--jobs", str(args.jobs)])
    os.environ.setdefault("PGHOST", "127.0.0.1")
    os.environ.setdefault("PGUSER", "postgres")
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                    os.path.join(ROOT, "benches", "latency-proxy", "Cargo.toml")], check=True)
    print(f"generating {args.rows} rows ...", file=sys.stderr)
    generate(args.rows)
    results = {}
    for case in args.cases.split(","):
        print(f"running {case} ...", file=sys.stderr)
        {"fresh": lambda: case_fresh(args.repeats, results),
         "existing": lambda: case_existing(args.repeats, results),
         "incremental": lambda: case_incremental(args.repeats, results),
         "verify": lambda: case_verify(args.repeats, results),
         "jobs": lambda: case_jobs(args.repeats, results),
         "rss": lambda: case_rss(args.rows, results),
         "tls": lambda: case_tls(args.repeats, results),
         "friendly": lambda: case_friendly(args.rows, args.repeats, results),
         "wan1": lambda: case_wan(0.5, args.repeats, results),
         "wan10": lambda: case_wan(5, args.repeats, results),
         "continuous": lambda: case_continuous(results),
         "othertx": lambda: case_othertx(results),
         "scattered": lambda: case_scattered(args.repeats, results),
         "diff": lambda: case_diff(args.repeats, results),
         "tables": lambda: case_tables(args.rows, args.repeats, results)}[case]()
    size = psql(SRC, "SELECT pg_size_pretty(pg_total_relation_size('transactions'))", capture=True)
    print(f"\n{args.rows} rows ({size} with indexes), {args.repeats} alternating repeats, medians, pgsync --jobs {args.jobs}; "
          f"{os.cpu_count()} cores; {psql('postgres', 'SELECT version()', capture=True).split(' on ')[0]}")
    for name, v in results.items():
        if isinstance(v, int):
            print(f"{name:45s} {v / 1024:8.1f} MiB")
            continue
        if isinstance(v, list):
            print(f"{name:45s} {statistics.median(v):8.1f} % of the pass (median)")
            continue
        if v[0] == "text":
            print(f"{name:45s} {v[1]}")
            continue
        if v[0] == "vs":
            mb, ma = statistics.median(v[1]), statistics.median(v[2])
            print(f"{name:45s} {mb:7.2f}s  vs {v[3]} {ma:7.2f}s  ratio {mb / ma:5.2f}x")
            continue
        if v[0] in ("ratio", "lag"):
            xs = sorted(v[1]) or [float("nan")]
            p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
            unit = "x" if v[0] == "ratio" else "s"
            print(f"{name:45s} median {statistics.median(xs):6.2f}{unit}  p99 {p99:6.2f}{unit}  max {xs[-1]:6.2f}{unit}  ({v[2]})")
            continue
        b, a, c = v
        mb, ma = statistics.median(b), statistics.median(a)
        line = (f"{name:45s} pgsync {mb:7.2f}s ({args.rows / mb:9.0f} rows/s)  baseline {ma:7.2f}s  "
                f"ratio {mb / ma:5.2f}x")
        if name.startswith("tls"):
            line = f"{name:45s} TLS {mb:7.2f}s  plain {ma:7.2f}s  ratio {mb / ma:5.2f}x"
        if name.startswith("two psql"):
            line = f"{name:45s} {mb:7.2f}s vs one pipeline {ma:7.2f}s  ratio {mb / ma:5.2f}x"
        if name.startswith("verify"):
            mc = statistics.median(c)
            print(f"{name:45s} pgsync {mb:7.2f}s  per-window hash queries, both sides at once {ma:7.2f}s  ratio {mb / ma:5.2f}x"
                  f"  | one whole-table query per side {mc:7.2f}s, pgsync/that {mb / mc:5.2f}x")
            continue
        if name.startswith("incremental"):
            line = (f"{name:45s} pgsync {mb:7.2f}s  hand-written staging+upsert {ma:7.2f}s  ratio {mb / ma:5.2f}x")
        if c:
            mc = statistics.median(c)
            line += f"  | pipeline into no-PK table + ADD PRIMARY KEY {mc:7.2f}s, pgsync/that {mb / mc:5.2f}x"
        print(line)
    psql("postgres", f"DROP DATABASE IF EXISTS {DST} WITH (FORCE)")
    psql("postgres", f"DROP DATABASE IF EXISTS {TABLES_DB}")


if __name__ == "__main__":
    main()
