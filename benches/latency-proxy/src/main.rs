//! A TCP forwarder that delays each direction by a fixed time, for benchmarking over a
//! simulated WAN link on machines without `tc netem`.
//!
//! `latency-proxy LISTEN TARGET DELAY_MS` — e.g. `latency-proxy 127.0.0.1:6432 127.0.0.1:5432
//! 5` gives every connection to 6432 a 10 ms round trip to the server on 5432.
//!
//! Each direction of each connection has a reader and a writer thread: the reader stamps
//! every chunk it reads with the moment it may leave (now + delay) and queues it; the writer
//! sleeps until that moment and writes it. The queue is unbounded, so the link's bandwidth is
//! what loopback gives (bytes in flight = rate × delay), only its latency changes. The order
//! of bytes is kept, and a close in one direction is forwarded after the same delay.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: latency-proxy LISTEN_ADDR TARGET_ADDR ONE_WAY_DELAY_MS (may be fractional)");
        std::process::exit(2);
    }
    let delay_ms: f64 = args[3].parse().unwrap_or_else(|_| {
        eprintln!("latency-proxy: {:?} is not a delay in milliseconds", args[3]);
        std::process::exit(2)
    });
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    let listener = TcpListener::bind(&args[1]).unwrap_or_else(|e| {
        eprintln!("latency-proxy: cannot listen on {}: {e}", args[1]);
        std::process::exit(2)
    });
    // Ready: whoever started us may connect now.
    println!("listening on {} -> {} with {delay_ms} ms each way", args[1], args[2]);
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let target = args[2].clone();
        thread::spawn(move || {
            let Ok(server) = TcpStream::connect(&target) else {
                return;
            };
            for s in [&client, &server] {
                let _ = s.set_nodelay(true);
            }
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = thread::spawn(move || pump(client, server, delay));
            pump(s2, c2, delay);
            let _ = up.join();
        });
    }
}

/// Forwards `from` to `to`, each chunk `delay` after it was read.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if bytes.is_empty() {
                break; // the other side closed
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() || n == 0 {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Read);
}
