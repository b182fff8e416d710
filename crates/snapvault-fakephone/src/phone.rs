//! What one emulated phone remembers between connections: the host it trusts (set by an
//! earlier pairing or by `Pair`), the Trust prompt and the user's answer to it, and the
//! service ports lockdownd has handed out.

use std::time::Instant;

use crate::FakePhoneConfig;

/// The host this phone trusts: a session needs its HostID, and TLS a client certificate
/// chaining to its root.
#[derive(Debug, Clone)]
pub(crate) struct Trusted {
    pub host_id: String,
    pub root_der: Vec<u8>,
    pub escrow_bag: Vec<u8>,
}

/// The user's answer to "Trust This Computer?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Pending,
    Trust,
    Deny,
}

#[derive(Debug, Default)]
pub(crate) struct Phone {
    pub trusted: Option<Trusted>,
    /// When the Trust prompt appeared (the first `Pair` from an untrusted host).
    prompt: Option<Instant>,
    /// Ports handed out by `StartService`, each good for one connection.
    service_ports: Vec<u16>,
    next_port: u16,
}

/// First port `StartService` hands out (lockdownd picks ports in the dynamic range).
const FIRST_SERVICE_PORT: u16 = 49152;

impl Phone {
    pub fn new(trusted: Option<Trusted>) -> Phone {
        Phone {
            trusted,
            ..Phone::default()
        }
    }

    /// Shows the Trust prompt (if it is not up yet) and says what the user has answered.
    pub fn prompt(&mut self, cfg: &FakePhoneConfig) -> Answer {
        let shown = *self.prompt.get_or_insert_with(Instant::now);
        let Some(after) = cfg
            .trust_after
            .or(cfg.deny_trust.then_some(Default::default()))
        else {
            return Answer::Pending; // nobody ever taps
        };
        if shown.elapsed() < after {
            Answer::Pending
        } else if cfg.deny_trust {
            Answer::Deny
        } else {
            Answer::Trust
        }
    }

    /// The user tapped Trust and the host paired: the prompt is gone.
    pub fn pair(&mut self, t: Trusted) {
        self.trusted = Some(t);
        self.prompt = None;
    }

    /// A new port for a started service.
    pub fn open_service_port(&mut self) -> u16 {
        let span = u16::MAX - FIRST_SERVICE_PORT;
        let port = FIRST_SERVICE_PORT + self.next_port % span;
        self.next_port = self.next_port.wrapping_add(1);
        self.service_ports.push(port);
        port
    }

    /// Whether `port` was handed out and not used yet; using it closes it.
    pub fn take_service_port(&mut self, port: u16) -> bool {
        match self.service_ports.iter().position(|&p| p == port) {
            Some(i) => {
                self.service_ports.swap_remove(i);
                true
            }
            None => false,
        }
    }
}
