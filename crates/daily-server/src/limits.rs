//! Connection limits of the HTTP listener: how long a connection may sit idle, how many may be
//! open at once (in all and from one address) and how many WebSocket connections may wait to
//! send `join`. `docs/server-limits.md` gives each default and why.
//!
//! The counts are taken when a TCP connection is accepted ([`ConnLimiter::try_admit`]) and
//! given back when its socket is closed, upgraded WebSocket or not: the slot travels with the
//! socket (`listener.rs` wraps the stream), so a joined participant holds its slot for the
//! whole call. A connection over a limit is not dropped silently: it is served one HTTP answer
//! (429 or 503 with `Retry-After`), so a client sees why instead of a hang.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Default of [`Limits::join_timeout`]: how long a new signalling connection may take to send
/// `join`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`Limits::http_idle_timeout`].
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Default of [`Limits::max_connections_per_ip`]. Above the 300 connections the 150-pair scale
/// benchmark opens from 127.0.0.1 (`benches/scale_bench.py`), with room to spare.
pub const MAX_CONNECTIONS_PER_IP: usize = 512;

/// Default of [`Limits::max_pending_joins`].
pub const MAX_PENDING_JOINS: usize = 256;

/// Upper bound of the default [`Limits::max_connections`] (the default is also bounded by the
/// process's file-descriptor limit; see [`default_max_connections`]).
pub const MAX_CONNECTIONS: usize = 4096;

/// Longest timeout accepted (a day): a typo of a few more zeros should not disable a limit.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The listener's limits (`ServerConfig::limits`). Every field has a default (see
/// `docs/server-limits.md`); [`Limits::validate`] checks a changed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long an HTTP connection may wait for a request's headers: a new connection (from
    /// accept, TLS handshake included) and a kept-alive one between requests alike; a request
    /// whose headers trickle in slower is cut off too. Default [`HTTP_IDLE_TIMEOUT`] (20 s).
    pub http_idle_timeout: Duration,
    /// How long an upgraded signalling WebSocket may take to send `join` (then it gets a fatal
    /// `error` and is closed). Default [`JOIN_TIMEOUT`] (10 s).
    pub join_timeout: Duration,
    /// Most TCP connections open at once, joined participants included. Past it: 503.
    /// Default [`default_max_connections`].
    pub max_connections: usize,
    /// Most TCP connections open at once from one client address (IPv6: one /64). Past it:
    /// 429. Default [`MAX_CONNECTIONS_PER_IP`] (512).
    pub max_connections_per_ip: usize,
    /// Most signalling WebSockets accepted but not yet joined, in all. Past it the upgrade is
    /// answered 503. Default [`MAX_PENDING_JOINS`] (256).
    pub max_pending_joins: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_idle_timeout: HTTP_IDLE_TIMEOUT,
            join_timeout: JOIN_TIMEOUT,
            max_connections: default_max_connections(),
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_pending_joins: MAX_PENDING_JOINS,
        }
    }
}

impl Limits {
    /// Checks every field; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<(), String> {
        for (name, t) in [
            ("http_idle_timeout", self.http_idle_timeout),
            ("join_timeout", self.join_timeout),
        ] {
            if t.is_zero() || t > MAX_TIMEOUT {
                return Err(format!(
                    "{name} must be more than 0 and at most 86400 s, got {t:?}"
                ));
            }
        }
        for (name, n) in [
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_pending_joins", self.max_pending_joins),
        ] {
            if n == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The default total connection cap: half the process's soft file-descriptor limit (the other
/// half is left to the SFU, the runtime and, when embedded, the clients of the same process),
/// at least 64 and at most [`MAX_CONNECTIONS`]; [`MAX_CONNECTIONS`] where the limit cannot be
/// read. A cap above what the process can open would let `accept` fail with `EMFILE`, and the
/// connections past it would wait in the kernel's backlog unanswered: the hang this avoids.
pub fn default_max_connections() -> usize {
    match fd_soft_limit() {
        Some(n) => (n / 2).clamp(64, MAX_CONNECTIONS),
        None => MAX_CONNECTIONS,
    }
}

/// `RLIMIT_NOFILE`'s soft limit from `/proc/self/limits` (Linux; `None` elsewhere or if
/// unlimited). Read from procfs because the crate has no `unsafe` (no `getrlimit`).
fn fd_soft_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// [`Limits::max_connections`].
    Total,
    /// [`Limits::max_connections_per_ip`].
    PerIp,
}

/// One client address for [`Limits::max_connections_per_ip`]: IPv4 addresses (also when
/// mapped into IPv6) as they are, IPv6 by /64, the block one subscriber usually gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u32),
    V6(u64),
}

impl AddrKey {
    fn of(ip: IpAddr) -> AddrKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => AddrKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_addr: HashMap<AddrKey, usize>,
}

/// The live counts behind [`Limits`], shared by the accept loop and the WebSocket handler.
pub(crate) struct ConnLimiter {
    limits: Limits,
    counts: Mutex<Counts>,
    pending: AtomicUsize,
    idle: Notify,
}

impl ConnLimiter {
    pub(crate) fn new(limits: Limits) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            limits,
            counts: Mutex::new(Counts::default()),
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a new connection from `ip`, or says which limit it is over.
    pub(crate) fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, Refusal> {
        let key = AddrKey::of(ip);
        let mut c = self.counts();
        if c.total >= self.limits.max_connections {
            return Err(Refusal::Total);
        }
        let n = c.per_addr.entry(key).or_insert(0);
        if *n >= self.limits.max_connections_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnSlot {
            limiter: self.clone(),
            key,
        })
    }

    /// Takes a slot for a WebSocket that has yet to send `join`; `None` when
    /// [`Limits::max_pending_joins`] are waiting already.
    pub(crate) fn try_pending(self: &Arc<Self>) -> Option<PendingSlot> {
        let max = self.limits.max_pending_joins;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| PendingSlot(self.clone()))
    }

    /// Open connections (admitted ones: refused connections are not counted).
    pub(crate) fn open(&self) -> usize {
        self.counts().total
    }

    /// Resolves once no admitted connection is left open.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A connection's place in the counts, given back on drop (when its socket is closed).
pub(crate) struct ConnSlot {
    limiter: Arc<ConnLimiter>,
    key: AddrKey,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total -= 1;
        if let Some(n) = c.per_addr.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per_addr.remove(&self.key);
            }
        }
        if c.total == 0 {
            self.limiter.idle.notify_waiters();
        }
    }
}

/// A WebSocket's place among those waiting to join; dropped once `join` arrived (or the
/// connection ended).
pub(crate) struct PendingSlot(Arc<ConnLimiter>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(total: usize, per_ip: usize, pending: usize) -> Arc<ConnLimiter> {
        ConnLimiter::new(Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            max_pending_joins: pending,
            ..Limits::default()
        })
    }

    #[test]
    fn per_address_and_total_caps() {
        let l = limiter(3, 2, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = l.try_admit(a).unwrap();
        let _a2 = l.try_admit(a).unwrap();
        assert_eq!(l.try_admit(a).err(), Some(Refusal::PerIp));
        let _b1 = l.try_admit(b).unwrap();
        assert_eq!(l.try_admit(b).err(), Some(Refusal::Total));
        drop(a1);
        assert_eq!(l.open(), 2);
        let _a3 = l.try_admit(a).unwrap();
        // A refused connection took nothing.
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn ipv6_by_64_and_mapped_ipv4() {
        let l = limiter(10, 1, 1);
        let _x = l.try_admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            l.try_admit("2001:db8::2".parse().unwrap()).err(),
            Some(Refusal::PerIp)
        );
        assert!(l.try_admit("2001:db8:0:1::1".parse().unwrap()).is_ok());
        let _v4 = l.try_admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(
            l.try_admit("::ffff:192.0.2.1".parse().unwrap()).err(),
            Some(Refusal::PerIp)
        );
    }

    #[test]
    fn pending_joins_bounded() {
        let l = limiter(10, 10, 2);
        let p1 = l.try_pending().unwrap();
        let _p2 = l.try_pending().unwrap();
        assert!(l.try_pending().is_none());
        drop(p1);
        assert!(l.try_pending().is_some());
    }

    #[test]
    fn validation_names_the_field() {
        assert!(Limits::default().validate().is_ok());
        let e = Limits {
            join_timeout: Duration::ZERO,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("join_timeout"), "{e}");
        let e = Limits {
            max_pending_joins: 0,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("max_pending_joins"), "{e}");
        let d = default_max_connections();
        assert!((64..=MAX_CONNECTIONS).contains(&d), "{d}");
    }
}
