//! The links between parties: TCP, one frame per peer per round, lengths checked
//! before allocating, and counters of what was really sent.
//!
//! A frame is a 24-byte header (magic `SMPF`, sender, receiver, the round number, the
//! payload length in bytes) and the payload (u64 words, little-endian). Every party
//! runs the same schedule, so the receiver knows the round and the length to expect
//! and rejects anything else before reading the payload. Writes go through one
//! writer thread per link, so two parties sending large payloads to each other at the
//! same time never both block in `write` (aby3.md §9).

use super::error::MpcError;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAGIC: &[u8; 4] = b"SMPF";
/// Magic of the frame a party sends its remaining peers when it stops on a failure,
/// with the party it lost in the length field.
const ABORT: &[u8; 4] = b"SMPA";
const HEADER: usize = 24;
const HELLO: &[u8; 4] = b"SMPH";

/// What a party really sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Rounds taken part in.
    pub rounds: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Frames sent (each also carries a 24-byte header).
    pub frames: u64,
}

impl Traffic {
    /// The traffic since `earlier`.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            rounds: self.rounds - earlier.rounds,
            bytes: self.bytes - earlier.bytes,
            frames: self.frames - earlier.frames,
        }
    }
}

struct Link {
    peer: usize,
    reader: TcpStream,
    writer: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

/// A party's connections to the two others.
pub struct Net {
    id: usize,
    links: Vec<Link>,
    timeout: Duration,
    traffic: Traffic,
}

impl Net {
    /// Connects party `id` (listening on `listener`) to the parties at `addrs`: the
    /// higher id of each pair dials the lower one, retrying until `timeout`.
    pub fn connect(
        id: usize,
        listener: TcpListener,
        addrs: &[SocketAddr; 3],
        timeout: Duration,
    ) -> Result<Net, MpcError> {
        let deadline = Instant::now() + timeout;
        let mut streams: Vec<(usize, TcpStream)> = Vec::new();
        for peer in (0..3).filter(|&p| p < id) {
            let fail = |reason: String| MpcError::Connect { peer, addr: addrs[peer].to_string(), reason };
            let mut s = loop {
                match TcpStream::connect_timeout(&addrs[peer], Duration::from_millis(200)) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() >= deadline => return Err(fail(e.to_string())),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            let mut hello = HELLO.to_vec();
            hello.push(id as u8);
            s.write_all(&hello).map_err(|e| fail(e.to_string()))?;
            streams.push((peer, s));
        }
        listener.set_nonblocking(true).map_err(|e| MpcError::Setup(format!("cannot listen: {e}")))?;
        while streams.len() < 2 {
            match listener.accept() {
                Ok((mut s, addr)) => {
                    s.set_nonblocking(false)
                        .and_then(|_| s.set_read_timeout(Some(timeout)))
                        .map_err(|e| MpcError::Setup(format!("cannot configure the connection from {addr}: {e}")))?;
                    let mut hello = [0u8; 5];
                    let peer = match s.read_exact(&mut hello) {
                        Ok(()) if &hello[..4] == HELLO && (hello[4] as usize) > id && hello[4] < 3 => hello[4] as usize,
                        // A stray connection (a port scanner, a wrong party): ignore it.
                        _ => continue,
                    };
                    if streams.iter().any(|(p, _)| *p == peer) {
                        continue;
                    }
                    streams.push((peer, s));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing = (id + 1..3).find(|p| streams.iter().all(|(q, _)| q != p)).unwrap_or(id);
                        return Err(MpcError::Connect {
                            peer: missing,
                            addr: addrs[missing].to_string(),
                            reason: format!("it did not connect within {:.1} s", timeout.as_secs_f64()),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(MpcError::Setup(format!("cannot accept connections: {e}"))),
            }
        }
        streams.sort_by_key(|(p, _)| *p);
        let mut links = Vec::new();
        for (peer, s) in streams {
            let io = |e: std::io::Error| MpcError::Io { peer, round: 0, source: e };
            s.set_nodelay(true).map_err(io)?;
            s.set_read_timeout(Some(timeout)).map_err(io)?;
            s.set_write_timeout(Some(timeout)).map_err(io)?;
            let mut w = s.try_clone().map_err(io)?;
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let thread = std::thread::spawn(move || {
                // A failed write ends the thread; the peer then sees a closed link,
                // and this party sees its own failure when it next reads.
                for frame in rx {
                    if w.write_all(&frame).is_err() {
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
            links.push(Link { peer, reader: s, writer: Some(tx), thread: Some(thread) });
        }
        Ok(Net { id, links, timeout, traffic: Traffic::default() })
    }

    /// This party's id.
    pub fn id(&self) -> usize {
        self.id
    }

    /// What was sent so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// One round: sends `sends[p]` to each peer `p` that has a non-empty vector, then
    /// receives exactly `expect[p]` words from each peer with a non-zero count.
    pub fn round(&mut self, sends: [Vec<u64>; 3], expect: [usize; 3]) -> Result<[Vec<u64>; 3], MpcError> {
        let round = self.traffic.rounds;
        self.traffic.rounds += 1;
        for (peer, words) in sends.into_iter().enumerate() {
            if words.is_empty() {
                continue;
            }
            assert_ne!(peer, self.id, "a party never sends to itself");
            let mut frame = Vec::with_capacity(HEADER + 8 * words.len());
            frame.extend_from_slice(MAGIC);
            frame.extend_from_slice(&[self.id as u8, peer as u8, 0, 0]);
            frame.extend_from_slice(&round.to_le_bytes());
            frame.extend_from_slice(&(8 * words.len() as u64).to_le_bytes());
            words.iter().for_each(|w| frame.extend_from_slice(&w.to_le_bytes()));
            self.traffic.bytes += 8 * words.len() as u64;
            self.traffic.frames += 1;
            let link = self.links.iter().find(|l| l.peer == peer).expect("two links");
            if link.writer.as_ref().expect("open").send(frame).is_err() {
                return Err(MpcError::PeerClosed { peer, round });
            }
        }
        let mut out: [Vec<u64>; 3] = Default::default();
        for (peer, &n) in expect.iter().enumerate() {
            if n > 0 {
                out[peer] = self.receive(peer, round, n)?;
            }
        }
        Ok(out)
    }

    /// Tells every peer except `lost` that this party stops because it lost `lost`,
    /// so their errors name the party at the root of the failure.
    pub fn abort(&mut self, lost: usize) {
        let round = self.traffic.rounds;
        for link in self.links.iter().filter(|l| l.peer != lost) {
            let mut frame = ABORT.to_vec();
            frame.extend_from_slice(&[self.id as u8, link.peer as u8, 0, 0]);
            frame.extend_from_slice(&round.to_le_bytes());
            frame.extend_from_slice(&(lost as u64).to_le_bytes());
            if let Some(w) = &link.writer {
                let _ = w.send(frame);
            }
        }
    }

    fn receive(&mut self, peer: usize, round: u64, words: usize) -> Result<Vec<u64>, MpcError> {
        let (id, secs) = (self.id, self.timeout.as_secs_f64());
        let link = self.links.iter_mut().find(|l| l.peer == peer).expect("two links");
        let fail = |e: std::io::Error| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => MpcError::Timeout { peer, secs, round },
            ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe => MpcError::PeerClosed { peer, round },
            _ => MpcError::Io { peer, round, source: e },
        };
        let mut h = [0u8; HEADER];
        link.reader.read_exact(&mut h).map_err(fail)?;
        let garbage = |what: String| MpcError::Garbage { peer, round, what };
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        if &h[..4] == ABORT {
            return Err(MpcError::PeerAborted { peer, lost: u64_at(16) as usize, round });
        }
        if &h[..4] != MAGIC {
            return Err(garbage("not a frame (bad magic)".into()));
        }
        if h[4] as usize != peer || h[5] as usize != id {
            return Err(garbage(format!("frame addressed from {} to {}", h[4], h[5])));
        }
        if u64_at(8) != round {
            return Err(garbage(format!("frame of round {}", u64_at(8))));
        }
        if u64_at(16) != 8 * words as u64 {
            return Err(garbage(format!("{} payload bytes, the schedule says {}", u64_at(16), 8 * words)));
        }
        let mut payload = vec![0u8; 8 * words];
        link.reader.read_exact(&mut payload).map_err(fail)?;
        Ok(payload.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
}

impl Drop for Net {
    /// Flushes what the writer threads still hold before the sockets close.
    fn drop(&mut self) {
        for link in &mut self.links {
            drop(link.writer.take());
            if let Some(t) = link.thread.take() {
                let _ = t.join();
            }
        }
    }
}
