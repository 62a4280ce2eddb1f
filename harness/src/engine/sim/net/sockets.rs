//! Opening and closing connections: a SYN's way (through interceptions, held or lost on a
//! faulty link), the far host's answer, listening and accepting, and a close with FIN or RST.

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use super::conn::{Conn, Half, Kind, Listening};
use super::{FIRST_EPHEMERAL_PORT, Network, Syn};
use crate::engine::LinkFault;

impl Network {
    /// The host `from` connects to `to`: where the attempt goes (after interception), and when
    /// its SYN arrives there.
    pub(crate) fn syn(&mut self, from: usize, to: usize) -> (usize, Syn) {
        let to = self
            .intercepts
            .iter()
            .find(|(f, t, _)| *f == from && *t == to)
            .map_or(to, |(_, _, via)| *via);
        let syn = if self.faults[from][to] == Some(LinkFault::Blackhole) {
            Syn::Lost
        } else {
            // No arrival time while the link holds what it carries.
            match self.arrival(from, to, 0) {
                Some(at) => Syn::Arrives(at),
                None => Syn::Held(self.released.clone()),
            }
        };
        (to, syn)
    }

    /// The SYN from `from` reached `to:port`: opens the connection if something listens
    /// there. Gives the new connection's id and when the answer (SYN-ACK or RST) reaches
    /// `from`.
    pub(crate) fn open(&mut self, from: usize, to: usize, port: u16) -> (Option<u64>, Duration) {
        let back = self
            .arrival(to, from, 0)
            .unwrap_or_else(|| self.now() + self.links[to][from].latency);
        if self.hosts[to].crashed || !self.listeners.contains_key(&(to, port)) {
            let ip = self.hosts[to].ip.clone();
            self.record(from, format_args!("connect {ip}:{port} refused"));
            return (None, back);
        }
        let local = self.hosts[from].next_port;
        self.hosts[from].next_port = local.checked_add(1).unwrap_or(FIRST_EPHEMERAL_PORT);
        let mut conn = Conn {
            hosts: [from, to],
            ports: [local, port],
            halves: [Half::default(), Half::default()],
            closed: [false; 2],
        };
        // The accepting side's first bytes cannot overtake its SYN-ACK.
        conn.halves[1].last_at = back;
        let id = self.conns.insert(conn);
        if let Some(l) = self.listeners.get_mut(&(to, port)) {
            l.queue.push_back(id);
            if let Some(w) = l.waker.take() {
                w.wake();
            }
        }
        let ip = self.hosts[to].ip.clone();
        self.record(from, format_args!("#{id} connect {ip}:{port} from {local}"));
        (Some(id), back)
    }

    /// Starts listening on `host:port`.
    pub(crate) fn listen(&mut self, host: usize, port: u16) -> io::Result<()> {
        if self.listeners.contains_key(&(host, port)) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}:{port} is already listening", self.hosts[host].name),
            ));
        }
        self.listeners.insert((host, port), Listening::default());
        self.record(host, format_args!("listen {port}"));
        Ok(())
    }

    /// Stops listening on `host:port`; connections never accepted are reset.
    pub(crate) fn unlisten(&mut self, host: usize, port: u16) {
        if let Some(l) = self.listeners.remove(&(host, port)) {
            for id in l.queue {
                self.close(id, 1, true);
            }
        }
    }

    /// The next connection accepted on `host:port`, or `Pending` with `cx` registered.
    pub(crate) fn poll_accept(
        &mut self,
        host: usize,
        port: u16,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<u64>> {
        if self.hosts[host].crashed {
            return Poll::Ready(Err(io::Error::other("the host crashed")));
        }
        let Some(l) = self.listeners.get_mut(&(host, port)) else {
            return Poll::Ready(Err(io::Error::other("the listener is closed")));
        };
        match l.queue.pop_front() {
            Some(id) => {
                let peer = self.conns.get(id).map(|c| (c.hosts[0], c.ports[0]));
                if let Some((h, p)) = peer {
                    let ip = self.hosts[h].ip.clone();
                    self.record(host, format_args!("#{id} accept {port} from {ip}:{p}"));
                }
                Poll::Ready(Ok(id))
            }
            None => {
                l.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The address of end `side`'s peer, as text (its IP).
    pub(crate) fn peer_ip(&self, id: u64, side: usize) -> String {
        self.conns
            .get(id)
            .map(|c| self.hosts[c.hosts[1 - side]].ip.clone())
            .unwrap_or_default()
    }

    /// End `side` of `id` closes: with RST if `reset` or if it leaves bytes unread, else with
    /// FIN. Either way it reads no more; bytes that reach it later are answered with RST.
    pub(crate) fn close(&mut self, id: u64, side: usize, reset: bool) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.closed[side] {
            return;
        }
        conn.closed[side] = true;
        let host = conn.hosts[side];
        let crashed = self.hosts[host].crashed;
        let reset = reset || conn.halves[1 - side].has_data();
        let incoming = &mut conn.halves[1 - side];
        incoming.reader_gone = true;
        incoming.queue.clear();
        incoming.unread = 0;
        incoming.wake_writer();
        let was_shut = conn.halves[side].shut;
        conn.halves[side].shut = true;
        if !crashed {
            if reset {
                if conn.halves[side].rst_at.is_none() {
                    self.send(id, side, Kind::Rst, Vec::new());
                }
                self.record(host, format_args!("#{id} reset"));
            } else if !was_shut {
                self.send(id, side, Kind::Fin, Vec::new());
                self.record(host, format_args!("#{id} close"));
            }
        }
        if self
            .conns
            .get(id)
            .is_some_and(|c| c.closed[0] && c.closed[1])
        {
            self.conns.remove(id);
        }
    }
}
