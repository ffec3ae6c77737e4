//! A replicated Grafana Loki 3.7.6 for tests: three members on loopback in
//! one memberlist ring with `replication_factor: 3`, run by
//! `scripts/loki-ring` (the script a developer uses to reproduce the same
//! thing by hand), and [`RoundRobin`], a TCP front that spreads connections
//! over the members as a user's load balancer would.
//!
//! The ring's ports come from the same range as the single real Lokis
//! ([`super::real_loki::ports`]): member `I` listens on `BASE+I` (HTTP),
//! `BASE+I+6000` (gRPC) and `BASE+I+7000` (memberlist). A ring is stopped
//! when its [`LokiRing`] is dropped; one left behind by a killed test run is
//! stopped by the next run.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::real_loki::{RealLoki, ports};

pub const MEMBERS: usize = 3;
const GRPC_OFFSET: u16 = 6000;
const GOSSIP_OFFSET: u16 = 7000;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/loki-ring")
}

fn state_root() -> PathBuf {
    std::env::var_os("REAL_STATE").map_or_else(|| PathBuf::from("/tmp/real-loki"), PathBuf::from)
}

/// Runs `scripts/loki-ring ARGS`: its output, or what it said when it failed.
fn try_run(args: &[&str]) -> Result<String, String> {
    let output = Command::new(script())
        .args(args)
        .env("REAL_DIR", Path::new(super::real_loki::SHARED).join("real"))
        .output()
        .map_err(|e| format!("cannot run scripts/loki-ring: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "scripts/loki-ring {args:?} failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs `scripts/loki-ring ARGS`; panics with its output when it fails.
fn run(args: &[&str]) -> String {
    try_run(args).unwrap_or_else(|why| panic!("{why}"))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Stops the rings whose test process is gone (a run killed before its
/// rings were dropped).
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(state_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(base) = name.strip_prefix("ring-") else {
            continue;
        };
        let owner = std::fs::read_to_string(entry.path().join("owner"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if owner.is_some_and(|pid| !pid_alive(pid)) {
            eprintln!("loki_ring: stopping the ring on :{base} left behind by a killed test run");
            if let Err(why) = try_run(&["stop", base]) {
                eprintln!("loki_ring: {why}");
            }
        }
    }
}

fn ports_free(base: u16) -> bool {
    (0..MEMBERS as u16).all(|i| {
        let port = base + i;
        [port, port + GRPC_OFFSET, port + GOSSIP_OFFSET]
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            && std::net::UdpSocket::bind(("127.0.0.1", port + GOSSIP_OFFSET)).is_ok()
    })
}

/// A running ring of three Loki 3.7.6 members.
pub struct LokiRing {
    pub base: u16,
}

impl LokiRing {
    /// Starts the three members and waits until each sees three ACTIVE
    /// ingesters (blocking: about 15 s). Ports free when looked at may be
    /// taken before Loki binds them (other test processes use the range):
    /// then the ring is stopped and started again on other ports, twice at
    /// most.
    pub fn start() -> LokiRing {
        sweep_orphans();
        let range = ports();
        let mut failures = Vec::new();
        // From the top of the range down: the single Lokis take ports from
        // a place of their own in it.
        let mut bases = (range.start..range.end.saturating_sub(MEMBERS as u16 - 1)).rev();
        for _ in 0..3 {
            let Some(base) = bases.by_ref().find(|base| ports_free(*base)) else {
                break;
            };
            let dir = state_root().join(format!("ring-{base}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("owner"), std::process::id().to_string()).unwrap();
            let ring = LokiRing { base };
            match try_run(&["start", &base.to_string()]) {
                Ok(_) => return ring,
                // Dropping the ring stops what did start.
                Err(why) => failures.push(format!(":{base}: {why}")),
            }
            bases.nth(MEMBERS - 1);
        }
        panic!(
            "loki_ring: no ring could start in {range:?}:\n{}",
            failures.join("\n")
        );
    }

    pub fn http_port(&self, member: usize) -> u16 {
        self.base + member as u16
    }

    /// A handle for queries to one member (dropping it leaves it running).
    pub fn member(&self, member: usize) -> RealLoki {
        RealLoki::at(self.http_port(member))
    }

    /// What stops and starts members, for another thread; the ring itself
    /// stays with its owner, which stops it.
    pub fn control(&self) -> RingControl {
        RingControl { base: self.base }
    }

    /// The log of a member (for a failing test's message).
    pub fn log(&self, member: usize) -> String {
        std::fs::read_to_string(
            state_root()
                .join(format!("ring-{}", self.base))
                .join(member.to_string())
                .join("loki.log"),
        )
        .unwrap_or_default()
    }
}

impl Drop for LokiRing {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", &self.base.to_string()])
            .output();
    }
}

/// Stops and starts the members of a ring (blocking, through the script).
#[derive(Debug, Clone, Copy)]
pub struct RingControl {
    base: u16,
}

impl RingControl {
    /// `kill -9` of a member: it stays in the ring, unhealthy.
    pub fn kill(&self, member: usize) {
        run(&["kill-member", &member.to_string(), &self.base.to_string()]);
    }

    /// Stops a member gracefully (SIGTERM): it leaves the ring.
    pub fn stop_member(&self, member: usize) {
        run(&["stop-member", &member.to_string(), &self.base.to_string()]);
    }

    /// Starts a member again, with its WAL; returns when it is ready.
    pub fn start_member(&self, member: usize) {
        run(&["start-member", &member.to_string(), &self.base.to_string()]);
    }
}

/// What the front saw, per member.
#[derive(Debug, Default)]
pub struct FrontStats {
    /// Connections passed to the member.
    pub connections: [AtomicU64; MEMBERS],
    /// Of those, open now.
    pub open: [AtomicU64; MEMBERS],
    /// Connections the member refused (the front then tried the next one).
    pub refused: [AtomicU64; MEMBERS],
    /// Connections that ended with an error on the member's side.
    pub broken: [AtomicU64; MEMBERS],
    /// Connections closed with a request in flight (see
    /// [`RoundRobin::cut_next_request`]).
    pub cut: [AtomicU64; MEMBERS],
}

impl FrontStats {
    pub fn snapshot(counters: &[AtomicU64; MEMBERS]) -> [u64; MEMBERS] {
        std::array::from_fn(|i| counters[i].load(Ordering::Relaxed))
    }
}

/// The member a held request was going to, and what lets the front go on.
pub type HeldRequest = (usize, oneshot::Sender<()>);

/// A round-robin TCP front before the members, as nginx's `stream` module
/// with its defaults: each new connection goes to the next member, and one
/// that refuses the connection is skipped for the next (`proxy_next_upstream
/// on`). No health checks and no retries of requests: a member that dies
/// with connections open cuts them, and the client sees that.
pub struct RoundRobin {
    pub addr: SocketAddr,
    pub stats: Arc<FrontStats>,
    armed: Arc<Mutex<Option<oneshot::Sender<HeldRequest>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    pub async fn start(members: Vec<u16>) -> RoundRobin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(FrontStats::default());
        let armed = Arc::new(Mutex::new(None));
        let next = Arc::new(AtomicUsize::new(0));
        let task = {
            let (stats, armed) = (stats.clone(), armed.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    let (members, stats, armed) = (members.clone(), stats.clone(), armed.clone());
                    tokio::spawn(async move {
                        for attempt in 0..members.len() {
                            let i = (first + attempt) % members.len();
                            match tokio::net::TcpStream::connect(("127.0.0.1", members[i])).await {
                                Ok(upstream) => {
                                    stats.connections[i].fetch_add(1, Ordering::Relaxed);
                                    stats.open[i].fetch_add(1, Ordering::Relaxed);
                                    relay(client, upstream, i, &stats, &armed).await;
                                    stats.open[i].fetch_sub(1, Ordering::Relaxed);
                                    return;
                                }
                                Err(_) => {
                                    stats.refused[i].fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        // No member answers: the client's connection is closed.
                    });
                }
            })
        };
        RoundRobin {
            addr,
            stats,
            armed,
            task,
        }
    }

    pub fn push_url(&self) -> String {
        format!("http://{}/loki/api/v1/push", self.addr)
    }

    /// Holds the next request that arrives, on any connection, before it
    /// reaches its member: the receiver gets that member and a sender. Once
    /// that is sent (or dropped), the front closes the client's connection
    /// without an answer, as it would if the member died with the request
    /// in flight: a test kills the member in between.
    pub fn cut_next_request(&self) -> oneshot::Receiver<HeldRequest> {
        let (tell, told) = oneshot::channel();
        *self.armed.lock().unwrap() = Some(tell);
        told
    }

    /// The member with the most open connections, among `candidates`.
    pub fn busiest(&self, candidates: &[usize]) -> Option<usize> {
        candidates
            .iter()
            .copied()
            .filter(|i| self.stats.open[*i].load(Ordering::Relaxed) > 0)
            .max_by_key(|i| self.stats.open[*i].load(Ordering::Relaxed))
    }
}

/// Copies both ways between a client and member `member`, unless a request
/// is to be cut (see [`RoundRobin::cut_next_request`]).
async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    member: usize,
    stats: &FrontStats,
    armed: &Mutex<Option<oneshot::Sender<HeldRequest>>>,
) {
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    let answers = tokio::spawn(async move {
        let copied = tokio::io::copy(&mut from_upstream, &mut to_client).await;
        let _ = to_client.shutdown().await;
        copied.is_ok()
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from_client.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let hold = armed.lock().unwrap().take();
        if let Some(tell) = hold {
            let (go, gone) = oneshot::channel();
            let _ = tell.send((member, go));
            let _ = gone.await;
            // Dropping the halves closes the client's connection unanswered.
            answers.abort();
            stats.cut[member].fetch_add(1, Ordering::Relaxed);
            return;
        }
        if to_upstream.write_all(&buffer[..n]).await.is_err() {
            stats.broken[member].fetch_add(1, Ordering::Relaxed);
            answers.abort();
            return;
        }
    }
    let _ = to_upstream.shutdown().await;
    if let Ok(false) = answers.await {
        stats.broken[member].fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
