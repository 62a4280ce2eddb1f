//! Who listens on a port: the listening TCP sockets of `/proc/net/tcp` and `/proc/net/tcp6`
//! by port, and whether one of them belongs to a set of processes (a socket is theirs when
//! one of their `/proc/PID/fd` entries links to `socket:[INODE]`).
//!
//! A port that accepts a connection is not proof that the program told to listen there does:
//! a port chosen free a moment earlier can be taken by another process before the program
//! binds it. The program then fails to bind (Apache httpd: "AH00072: make_sock: could not
//! bind to address"), and a connect probe that reaches the other process, or the program's
//! other listener in the few milliseconds before it exits, would call it ready.

/// Socket inodes of the TCP sockets listening on `port` (any local address, IPv4 or IPv6).
pub(super) fn listening_inodes(port: u16) -> Vec<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| parse_listening(&table, port))
        .collect()
}

/// The inodes of the rows of a `/proc/net/tcp` table in state LISTEN (`0A`) on `port`. A row:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
/// …`, the local address `HEXADDR:HEXPORT`.
fn parse_listening(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let hex_port = local.rsplit(':').next()?;
            let listening = *state == "0A" && u16::from_str_radix(hex_port, 16).ok()? == port;
            listening.then(|| inode.parse().ok()).flatten()
        })
        .collect()
}

/// Whether one of `pids` holds a socket with one of `inodes` open.
pub(super) fn held_by(pids: &[u32], inodes: &[u64]) -> bool {
    if inodes.is_empty() {
        return false;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    pids.iter().any(|pid| {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2710 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2710 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:2711 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn rows_listening_on_the_port_give_their_inodes_and_connections_do_not() {
        assert_eq!(parse_listening(TABLE, 10_000), vec![4242]);
        assert_eq!(parse_listening(TABLE, 10_001), vec![4444]);
        assert!(parse_listening(TABLE, 10_002).is_empty());
        assert!(parse_listening("garbage\n1 2\n", 10_000).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_found_and_is_held_by_it_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inodes = listening_inodes(port);
        assert_eq!(inodes.len(), 1, "{inodes:?}");
        assert!(held_by(&[std::process::id()], &inodes));
        assert!(!held_by(&[u32::MAX], &inodes));
        drop(listener);
        assert!(listening_inodes(port).is_empty());
    }
}
