//! Integration tests: the real `pgsync` binary against a real PostgreSQL server
//! (`PGSYNC_TEST_URL`, default postgres://postgres@127.0.0.1:5432/postgres). Every test
//! creates and drops its own databases, so they run in parallel.

/// Shared set-up: test databases, the binary runner, fixtures, exact table comparison.
mod harness;

/// Fresh and incremental copies: ties, types, keys, names, NULL cursors, created tables.
mod sync;

/// First loads by heap block ranges: unordered heaps, --jobs, SIGKILL under a writer.
mod blocks;

/// `--deletes`: rows deleted at the source, removed after a pass; under a writer too.
mod deletes;

/// A hot standby as the source: the primary's late commits held back from its snapshot.
mod standby;

/// Crashes: SIGKILL at random moments and at each protocol step, SIGINT, then resume.
mod crash;

/// Resume and state handling: nothing to resume, lost, corrupt or newer state.
mod resume;

/// Bad input: exit 2, one clear line naming the side, destination unchanged.
mod bad_input;

/// Fuzz corpus replay: the fuzz targets' properties on the committed seeds.
mod fuzz_corpus;

/// Verify: exit codes, differing keys by kind, repair, ranges and the watermark.
mod verify;

/// Faults: terminated backends on either side, permanent errors, retry limits, continuous.
mod faults;

/// A live source: late commits (holdback and lookback) and a concurrent writer.
mod consistency;

/// Operator experience: live status, plan, configuration precedence, output modes.
mod operator;

/// `--jobs`: slices copied at once, killed and resumed (with or without the state).
mod parallel;

/// The window transaction: receipt and COMMIT in one round trip, all or nothing.
mod txn;

/// Connecting the libpq way: TLS modes, certificates, .pgpass, services, conninfo strings.
mod tls;

/// Partitioned sources, synced through the parent.
mod partitioned;

/// Destination tables pgsync creates, and pre-created ones: identity, defaults, generated
/// columns, collations, user types.
mod created;

/// `--mode diff`: sync without a cursor by window checksums; deletes, triggers, crashes.
mod diff;

/// Many tables in one job: patterns, per-table failures, SIGKILL and resume over the set,
/// status and verify over the set, foreign keys between synced tables.
mod tables;
