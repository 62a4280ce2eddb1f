//! A connection's state: its two directions, each a queue of segments stamped with their
//! arrival, the hosts and ports at its ends, and the slab that holds every connection by id.

use std::collections::VecDeque;
use std::io;
use std::task::Waker;
use std::time::Duration;

/// One host's addressing and state.
#[derive(Debug)]
pub(super) struct Host {
    pub(super) name: String,
    pub(super) ip: String,
    pub(super) next_port: u16,
    pub(super) crashed: bool,
}

/// What a segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Data,
    Fin,
    Rst,
}

/// A write, a FIN or a RST on its way.
#[derive(Debug)]
pub(super) struct Segment {
    /// When it arrives; `None` while a held link keeps it.
    pub(super) at: Option<Duration>,
    pub(super) kind: Kind,
    pub(super) data: Vec<u8>,
    /// Bytes of `data` already read.
    pub(super) read: usize,
}

/// One direction of a connection.
#[derive(Debug, Default)]
pub(super) struct Half {
    pub(super) queue: VecDeque<Segment>,
    /// Bytes in flight or unread: the writer waits when this reaches the buffer size.
    pub(super) unread: usize,
    /// Arrival time of the last segment sent: nothing sent later arrives earlier.
    pub(super) last_at: Duration,
    pub(super) reader: Option<Waker>,
    pub(super) writer: Option<Waker>,
    /// The writer sent FIN or RST, or its host crashed: it sends nothing more.
    pub(super) shut: bool,
    /// Nobody will read: the reading end closed, reset or crashed.
    pub(super) reader_gone: bool,
    /// A blackhole swallowed bytes: this direction delivers nothing ever again.
    pub(super) dead: bool,
    /// When a RST travelling this way arrives.
    pub(super) rst_at: Option<Duration>,
}

impl Half {
    pub(super) fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    pub(super) fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Whether bytes are still to be read, arrived or not.
    pub(super) fn has_data(&self) -> bool {
        self.queue.iter().any(|s| s.kind == Kind::Data)
    }
}

/// A connection between end 0 (the side that connected) and end 1 (the side that accepted).
/// `halves[i]` carries bytes from end `i` to the other end.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) hosts: [usize; 2],
    pub(super) ports: [u16; 2],
    pub(super) halves: [Half; 2],
    /// Each end's stream is gone (dropped, reset, or its host crashed).
    pub(super) closed: [bool; 2],
}

/// A listening socket's queue of connections not yet accepted.
#[derive(Debug, Default)]
pub(super) struct Listening {
    pub(super) queue: VecDeque<u64>,
    pub(super) waker: Option<Waker>,
}

/// Connections by id: a vector whose free slots are reused, so a lookup is an index. An id
/// carries its slot's generation (high 32 bits) beside the index (low 32), so a stream end that
/// outlives its connection (a crashed host's, until its task is dropped) never reaches the
/// connection that reuses the slot.
#[derive(Debug, Default)]
pub(super) struct Slab {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<usize>,
}

impl Slab {
    pub(super) fn insert(&mut self, conn: Conn) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(conn);
        (u64::from(slot.0) << 32) | index as u64
    }

    pub(super) fn get(&self, id: u64) -> Option<&Conn> {
        let slot = self.slots.get((id & 0xffff_ffff) as usize)?;
        (u64::from(slot.0) == id >> 32).then_some(slot.1.as_ref())?
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Conn> {
        let slot = self.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if u64::from(slot.0) != id >> 32 {
            return None;
        }
        slot.1.as_mut()
    }

    pub(super) fn remove(&mut self, id: u64) {
        if self.get(id).is_some() {
            let index = (id & 0xffff_ffff) as usize;
            self.slots[index].1 = None;
            self.free.push(index);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (generation, c))| {
                Some(((u64::from(*generation) << 32) | i as u64, c.as_ref()?))
            })
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.slots.iter_mut().filter_map(|(_, c)| c.as_mut())
    }
}

pub(super) fn is_between(conn: &Conn, a: usize, b: usize) -> bool {
    (conn.hosts[0] == a && conn.hosts[1] == b) || (conn.hosts[0] == b && conn.hosts[1] == a)
}

pub(super) fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
}
