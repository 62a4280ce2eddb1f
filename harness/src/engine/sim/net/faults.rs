//! Link faults and crashes: a held link keeps what is on the wire until its release, which
//! schedules it in order; a blackhole swallows it for good; a crashed host goes silent.

use super::Network;
use super::conn::{Kind, is_between};
use crate::engine::LinkFault;

impl Network {
    /// Sets or lifts a fault on the link between `a` and `b`, both directions.
    pub(crate) fn fault(&mut self, a: usize, b: usize, fault: LinkFault) {
        let now = self.now();
        match fault {
            LinkFault::Hold => {
                self.faults[a][b] = Some(LinkFault::Hold);
                self.faults[b][a] = Some(LinkFault::Hold);
                // What is still on the wire is held too.
                for conn in self.conns.values_mut() {
                    if !is_between(conn, a, b) {
                        continue;
                    }
                    for half in &mut conn.halves {
                        for seg in &mut half.queue {
                            if seg.at.is_some_and(|t| t > now) {
                                seg.at = None;
                            }
                        }
                    }
                }
            }
            LinkFault::Blackhole => {
                self.faults[a][b] = Some(LinkFault::Blackhole);
                self.faults[b][a] = Some(LinkFault::Blackhole);
            }
            LinkFault::Release => {
                self.faults[a][b] = None;
                self.faults[b][a] = None;
                let ids: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| is_between(c, a, b))
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    for from in 0..2 {
                        self.release_half(id, from);
                    }
                }
                self.released.notify_waiters();
            }
        }
        let (na, nb) = (self.hosts[a].name.clone(), self.hosts[b].name.clone());
        self.record(a, format_args!("link {na}-{nb} {fault:?}"));
    }

    /// Schedules every held segment of one direction, in order.
    fn release_half(&mut self, id: u64, from: usize) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        let (a, b) = (conn.hosts[from], conn.hosts[1 - from]);
        let held: Vec<(usize, usize)> = conn.halves[from]
            .queue
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at.is_none())
            .map(|(i, s)| (i, s.data.len()))
            .collect();
        for (i, len) in held {
            let at = self.arrival(a, b, len).unwrap_or_else(|| self.now());
            if let Some(conn) = self.conns.get_mut(id) {
                let half = &mut conn.halves[from];
                let at = at.max(half.last_at);
                half.last_at = at;
                half.queue[i].at = Some(at);
                if half.queue[i].kind == Kind::Rst {
                    half.rst_at = Some(at);
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.halves[from].wake_reader();
        }
    }

    /// Crashes `host`: its listeners close and its connections go silent, as a machine that
    /// lost power. Peers hear nothing until they send.
    pub(crate) fn crash(&mut self, host: usize) {
        self.hosts[host].crashed = true;
        let ports: Vec<u16> = self
            .listeners
            .keys()
            .filter(|(h, _)| *h == host)
            .map(|(_, p)| *p)
            .collect();
        for port in ports {
            if let Some(l) = self.listeners.remove(&(host, port)) {
                if let Some(w) = l.waker {
                    w.wake();
                }
            }
        }
        let ids: Vec<(u64, usize)> = self
            .conns
            .iter()
            .flat_map(|(id, c)| {
                (0..2)
                    .filter(move |s| c.hosts[*s] == host && !c.closed[*s])
                    .map(move |s| (id, s))
            })
            .collect();
        for (id, side) in ids {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.closed[side] = true;
                conn.halves[side].shut = true;
                let incoming = &mut conn.halves[1 - side];
                incoming.reader_gone = true;
                incoming.queue.clear();
                incoming.unread = 0;
                incoming.wake_writer();
                if conn.closed[1 - side] {
                    self.conns.remove(id);
                }
            }
        }
        self.record(host, format_args!("crash"));
    }
}
