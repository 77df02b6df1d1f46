#!/usr/bin/env python3
"""A/B of pgsync builds (or options) on the incremental case, alternating, with the
hand-written baseline from the same start in every round.

Usage: benches/ab_incremental.py ROUNDS VARIANT[,VARIANT...] [--one-way-ms MS]
  VARIANT: pgsync options separated by spaces, `BIN=/path/to/pgsync` to use another build,
           or `-` for the defaults of target/release/pgsync.
  e.g. benches/ab_incremental.py 4 "BIN=/tmp/pgsync-old,-,--chunksize 400000" --one-way-ms 5

Uses the source table benches/run.py generated (run it once first). Each round: for each
variant, pgsync loads a fresh destination (untimed), 10% of the source's rows change, both
databases settle (VACUUM ANALYZE, CHECKPOINT) and pgsync's pass is timed; then the
hand-written staging + ordered upsert from the same start. The order reverses every round.
With --one-way-ms, everything goes through benches/latency-proxy.
"""
import argparse, os, statistics, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PGHOST", "127.0.0.1")
os.environ.setdefault("PGUSER", "postgres")
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rounds", type=int)
    ap.add_argument("variants")
    ap.add_argument("--one-way-ms", type=float, default=0)
    args = ap.parse_args()
    variants = [[] if v == "-" else v.split() for v in args.variants.split(",")]
    default_bin = run.BIN
    px = run.Proxies(args.one_way_ms, 6641) if args.one_way_ms else None
    s_url = run.url(run.SRC, px.src_port) if px else None
    d_url = run.url(run.DST, px.dst_port) if px else None
    ports = (px.src_port, px.dst_port) if px else (None, None)
    times = [[] for _ in range(len(variants) + 1)]
    change = 0
    try:
        for r in range(args.rounds):
            order = list(range(len(variants) + 1))
            if r % 2:
                order.reverse()
            for v in order:
                change += 1
                if v < len(variants):
                    bins = [a[4:] for a in variants[v] if a.startswith("BIN=")]
                    opts = [a for a in variants[v] if not a.startswith("BIN=")]
                    run.BIN = bins[0] if bins else default_bin
                    with tempfile.TemporaryDirectory() as st:
                        run.reset_dst()
                        run.pgsync(st, src=s_url, dst=d_url)
                        run.change_source(change, +1)
                        run.settle()
                        t = run.timed(lambda: run.pgsync(st, *opts, src=s_url, dst=d_url))
                else:
                    run.BIN = default_bin
                    with tempfile.TemporaryDirectory() as st:
                        run.reset_dst()
                        run.pgsync(st)
                    run.change_source(change, +1)
                    since = run.psql(run.SRC, f"SELECT min(updated) FROM transactions WHERE {run.CHANGED}",
                                     capture=True)
                    run.settle()
                    t = run.timed(lambda: run.manual_upsert(since, *ports))
                run.change_source(change, -1)
                times[v].append(t)
                print(r, " ".join(variants[v]) if v < len(variants) else "hand", f"{t:.2f}s",
                      file=sys.stderr, flush=True)
    finally:
        if px:
            px.close()
    hand = statistics.median(times[-1])
    for v, ts in enumerate(times):
        name = (" ".join(variants[v]) or "default") if v < len(variants) else "hand-written"
        m = statistics.median(ts)
        print(f"{name:40s} median {m:6.2f}s  ratio {m / hand:5.2f}x  ({', '.join(f'{t:.2f}' for t in ts)})")


if __name__ == "__main__":
    main()
