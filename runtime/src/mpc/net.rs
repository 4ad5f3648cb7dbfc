//! The links between parties: TLS 1.3 with pinned certificates (or plain TCP when asked),
//! one frame per peer per round, every header checked before allocating ([`frame`]),
//! and counters of what was really sent.
//!
//! Each party dials both others, so every pair has two links, one per direction: a
//! link is written by one side and read by the other, which lets each TLS connection
//! be driven by one thread without locks. Writes go through one writer thread per
//! link, so two parties sending large payloads to each other at the same time never
//! both block in `write` (aby3.md §9).
//!
//! [`frame`]: super::frame

use super::error::MpcError;
use super::frame::{abort_frame, data_header, read_frame, Expect, FrameError};
use super::tls::Tls;
use rustls::{ClientConnection, StreamOwned};
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const HELLO: &[u8; 4] = b"SMPH";
const VERSION: u8 = 1;
const HELLO_LEN: usize = 72;

/// What a party really sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Rounds taken part in.
    pub rounds: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Frames sent (each also carries a 40-byte header).
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

/// How links are protected.
#[derive(Clone)]
pub enum Security {
    /// Plain TCP: anyone on the network reads the seeds, and so every secret.
    Plain,
    /// TLS 1.3 with mutual authentication by pinned certificates.
    Tls(Tls),
}

struct Link {
    peer: usize,
    reader: Box<dyn Read + Send>,
    /// The socket under `reader`, to change its timeout.
    socket: TcpStream,
    writer: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

/// A party's connections to the two others.
pub struct Net {
    id: usize,
    session: [u8; 16],
    links: Vec<Link>,
    timeout: Duration,
    traffic: Traffic,
    aborted: bool,
}

/// What each party sends first on each of its outgoing links.
struct Hello {
    id: usize,
    nonce: [u8; 32],
    terms: [u8; 32],
}

impl Hello {
    fn to_bytes(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[..4].copy_from_slice(HELLO);
        b[4] = VERSION;
        b[5] = self.id as u8;
        b[8..40].copy_from_slice(&self.nonce);
        b[40..].copy_from_slice(&self.terms);
        b
    }

    /// The hello at the start of `link`, or `None` if it is not one from another party.
    fn read(link: &mut impl Read, own: usize) -> std::io::Result<Option<Hello>> {
        let mut b = [0u8; HELLO_LEN];
        link.read_exact(&mut b)?;
        if &b[..4] != HELLO || b[4] != VERSION || b[5] as usize >= 3 || b[5] as usize == own {
            return Ok(None);
        }
        let at = |i: usize| -> [u8; 32] { b[i..i + 32].try_into().expect("32 bytes") };
        Ok(Some(Hello { id: b[5] as usize, nonce: at(8), terms: at(40) }))
    }
}

/// What the thread setting up one link reports.
enum Event {
    Out(usize, Result<(Box<dyn Write + Send>, TcpStream), MpcError>),
    In(Result<Incoming, Inbound>),
}

/// A peer's incoming link: its hello, the reader, the socket under it.
type Incoming = (Hello, Box<dyn Read + Send>, TcpStream);

/// Why an incoming connection was not taken as a peer's link. Neither ends the
/// session: a stranger must not be able to stop it by connecting, and a peer whose
/// certificate is wrong fails its own handshake towards this party by name.
enum Inbound {
    /// Not a party at all (a port scanner): ignored.
    Stray,
    /// Refused, for a reason the error says if the peers never connect.
    Refused(String),
}

impl Net {
    /// Connects party `id` (listening on `listener`) to the parties at `addrs`: each
    /// party dials both others for its outgoing links and accepts their incoming ones,
    /// retrying until `timeout`. Each outgoing link starts with a hello: the party's id,
    /// a fresh nonce, and `terms` (a digest of what the parties must agree on, such as
    /// the plan); the session id is the hash of the three nonces.
    pub fn connect(
        id: usize,
        listener: TcpListener,
        addrs: &[SocketAddr; 3],
        security: &Security,
        timeout: Duration,
        terms: &[u8; 32],
    ) -> Result<Net, MpcError> {
        let deadline = Instant::now() + timeout;
        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let hello = Hello { id, nonce, terms: *terms }.to_bytes();
        let (tx, rx) = mpsc::channel::<Event>();
        for peer in (0..3).filter(|&p| p != id) {
            let (tx, security, addr) = (tx.clone(), security.clone(), addrs[peer]);
            // A thread per link: a TLS handshake blocks until the peer answers, and the
            // peer may itself be dialling.
            std::thread::spawn(move || {
                let _ = tx.send(Event::Out(peer, dial(peer, addr, &security, &hello, deadline, timeout)));
            });
        }
        listener.set_nonblocking(true).map_err(|e| MpcError::Setup(format!("cannot listen: {e}")))?;
        let mut outs: [Option<(Box<dyn Write + Send>, TcpStream)>; 3] = Default::default();
        let mut ins: [Option<Incoming>; 3] = Default::default();
        let mut refused: Option<String> = None;
        let done = |outs: &[Option<_>; 3], ins: &[Option<_>; 3]| {
            (0..3).filter(|&p| p != id).all(|p| outs[p].is_some() && ins[p].is_some())
        };
        while !done(&outs, &ins) {
            match listener.accept() {
                Ok((s, addr)) => {
                    let (tx, security) = (tx.clone(), security.clone());
                    std::thread::spawn(move || {
                        let _ = tx.send(Event::In(accept(s, addr, id, &security, timeout)));
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(MpcError::Setup(format!("cannot accept connections: {e}"))),
            }
            while let Ok(event) = rx.try_recv() {
                match event {
                    Event::Out(peer, link) => outs[peer] = Some(link?),
                    Event::In(Ok(link)) => {
                        let peer = link.0.id;
                        if link.0.terms != *terms {
                            return Err(MpcError::Terms { peer });
                        }
                        if ins[peer].is_none() {
                            ins[peer] = Some(link);
                        }
                    }
                    Event::In(Err(Inbound::Stray)) => {}
                    Event::In(Err(Inbound::Refused(why))) => refused = Some(why),
                }
            }
            if Instant::now() >= deadline && !done(&outs, &ins) {
                let missing = (0..3).find(|&p| p != id && (ins[p].is_none() || outs[p].is_none())).expect("not done");
                return Err(MpcError::Connect {
                    peer: missing,
                    addr: addrs[missing].to_string(),
                    reason: format!(
                        "it did not connect within {:.1} s{}",
                        timeout.as_secs_f64(),
                        refused.map(|r| format!(" (refused a connection: {r})")).unwrap_or_default()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut nonces = Sha256::new_with_prefix(b"secc session");
        for (p, link) in ins.iter().enumerate() {
            nonces.update(if p == id { &nonce } else { &link.as_ref().expect("linked").0.nonce });
        }
        let session: [u8; 16] = nonces.finalize()[..16].try_into().expect("16 bytes");
        let mut links = Vec::new();
        for peer in (0..3).filter(|&p| p != id) {
            let (_, reader, socket) = ins[peer].take().expect("linked");
            let (mut w, sock) = outs[peer].take().expect("linked");
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let thread = std::thread::spawn(move || {
                // A failed write ends the thread; the peer then sees a closed link,
                // and this party sees its own failure when it next reads.
                for frame in rx {
                    if w.write_all(&frame).and_then(|_| w.flush()).is_err() {
                        let _ = sock.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
            links.push(Link { peer, reader, socket, writer: Some(tx), thread: Some(thread) });
        }
        Ok(Net { id, session, links, timeout, traffic: Traffic::default(), aborted: false })
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
            let mut frame = data_header(&self.session, self.id, peer, round, words.len());
            frame.reserve(8 * words.len());
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
        if std::mem::replace(&mut self.aborted, true) {
            return;
        }
        let round = self.traffic.rounds;
        for link in self.links.iter().filter(|l| l.peer != lost) {
            if let Some(w) = &link.writer {
                let _ = w.send(abort_frame(&self.session, self.id, link.peer, round, lost));
            }
        }
    }

    fn receive(&mut self, peer: usize, round: u64, words: usize) -> Result<Vec<u64>, MpcError> {
        let want = Expect { session: self.session, sender: peer, receiver: self.id, round, words };
        let secs = self.timeout.as_secs_f64();
        let link = self.links.iter_mut().find(|l| l.peer == peer).expect("two links");
        let error = match read_frame(&mut link.reader, &want) {
            Ok(words) => return Ok(words),
            Err(e) => e,
        };
        let timed_out = |e: &FrameError| matches!(e, FrameError::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
        let error = if timed_out(&error) {
            // The peer may be stuck waiting on the third party, and about to say so:
            // tell the third party first, then give the peer a quarter of the timeout
            // to explain, so every error names the party at the root of the stall.
            let socket = link.socket.try_clone();
            self.abort(peer);
            let link = self.links.iter_mut().find(|l| l.peer == peer).expect("two links");
            match socket.and_then(|s| s.set_read_timeout(Some(self.timeout / 4))) {
                Ok(()) => match read_frame(&mut link.reader, &want) {
                    Err(e @ FrameError::Aborted { .. }) => e,
                    _ => error,
                },
                Err(_) => error,
            }
        } else {
            error
        };
        Err(match error {
            e if timed_out(&e) => MpcError::Timeout { peer, secs, round },
            FrameError::Io(e) => match e.kind() {
                ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => MpcError::PeerClosed { peer, round },
                _ => MpcError::Io { peer, round, source: e },
            },
            FrameError::Aborted { lost } => MpcError::PeerAborted { peer, lost: lost as usize, round },
            e => MpcError::Garbage { peer, round, what: e.to_string() },
        })
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

/// Sets the timeouts every link socket has, so no read or write blocks for longer.
pub(crate) fn configure(s: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))
}

/// Opens this party's outgoing link to `peer`: connect, the TLS handshake, the hello.
/// A failure of the transport (nobody listening yet, a reset) is retried until
/// `deadline`; a TLS failure (a wrong certificate) is final. Returns the writer and
/// the socket (to shut it down).
fn dial(
    peer: usize,
    addr: SocketAddr,
    security: &Security,
    hello: &[u8; HELLO_LEN],
    deadline: Instant,
    timeout: Duration,
) -> Result<(Box<dyn Write + Send>, TcpStream), MpcError> {
    loop {
        let e = match try_dial(
            peer,
            security,
            hello,
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
            timeout,
        ) {
            Ok(link) => return Ok(link),
            Err(e) => e,
        };
        if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
            return Err(MpcError::Handshake { peer, addr: addr.to_string(), reason: tls_reason(&e) });
        }
        if Instant::now() >= deadline {
            return Err(MpcError::Connect { peer, addr: addr.to_string(), reason: e.to_string() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn try_dial(
    peer: usize,
    security: &Security,
    hello: &[u8; HELLO_LEN],
    connected: std::io::Result<TcpStream>,
    timeout: Duration,
) -> std::io::Result<(Box<dyn Write + Send>, TcpStream)> {
    let s = connected?;
    configure(&s, timeout)?;
    let sock = s.try_clone()?;
    let mut w: Box<dyn Write + Send> = match security {
        Security::Plain => Box::new(s),
        Security::Tls(tls) => {
            let mut conn = tls.client(peer).map_err(std::io::Error::other)?;
            let mut s = s;
            while conn.is_handshaking() {
                conn.complete_io(&mut s)?;
            }
            Box::new(TlsWriter { conn, sock: s })
        }
    };
    w.write_all(hello)?;
    w.flush()?;
    Ok((w, sock))
}

/// Takes an incoming connection: the TLS handshake (the client's certificate must be
/// another party's pinned one), then the hello, which must come from that party.
fn accept(
    s: TcpStream,
    addr: SocketAddr,
    id: usize,
    security: &Security,
    timeout: Duration,
) -> Result<Incoming, Inbound> {
    configure(&s, timeout).map_err(|_| Inbound::Stray)?;
    let socket = s.try_clone().map_err(|_| Inbound::Stray)?;
    let refused = |reason: String| Inbound::Refused(format!("from {addr}: {reason}"));
    match security {
        Security::Plain => {
            let mut s = s;
            let mut first = [0u8; 1];
            s.peek(&mut first).map_err(|_| Inbound::Stray)?;
            // 0x16 opens a TLS handshake record.
            if first[0] == 0x16 {
                return Err(refused("it speaks TLS, and this party runs with --insecure".into()));
            }
            match Hello::read(&mut s, id) {
                Ok(Some(hello)) => Ok((hello, Box::new(s), socket)),
                _ => Err(Inbound::Stray),
            }
        }
        Security::Tls(tls) => {
            let mut conn = tls.server().map_err(|e| refused(e.to_string()))?;
            let mut s = s;
            while conn.is_handshaking() {
                match conn.complete_io(&mut s) {
                    Ok(_) => {}
                    Err(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                        return Err(refused(format!("TLS handshake failed: {}", tls_reason(&e))))
                    }
                    Err(_) => return Err(Inbound::Stray),
                }
            }
            let peer = conn.peer_certificates().and_then(|c| c.first()).and_then(|c| tls.party_of(c));
            let peer = peer.expect("the verifier accepts pinned certificates only");
            let mut link = StreamOwned::new(conn, s);
            match Hello::read(&mut link, id) {
                Ok(Some(hello)) if hello.id == peer => Ok((hello, Box::new(link), socket)),
                Ok(Some(hello)) => {
                    Err(refused(format!("party {peer}'s certificate, but it says it is party {}", hello.id)))
                }
                _ => Err(refused(format!("party {peer} did not send a hello"))),
            }
        }
    }
}

/// Why a TLS handshake failed, in words that say what to check.
fn tls_reason(e: &std::io::Error) -> String {
    use rustls::AlertDescription as A;
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(A::BadCertificate | A::CertificateUnknown | A::AccessDenied)) => {
            "it refused this party's certificate (does its parties file pin this party's key?)".into()
        }
        // rustls shows a verifier's own error with Debug: show ours as written.
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => {
            format!("invalid peer certificate: {}", other.0)
        }
        Some(e) => e.to_string(),
        None => e.to_string(),
    }
}

/// The writing half of a TLS link: encrypts into the socket and never reads, so a
/// writer thread cannot block on a peer that has nothing to say.
struct TlsWriter {
    conn: ClientConnection,
    sock: TcpStream,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        self.sock.flush()
    }
}
