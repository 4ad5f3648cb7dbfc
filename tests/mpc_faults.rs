//! The 3-party runtime under faults and load (aby3.md §9): real parties on loopback
//! sockets, with a relay on one link that stalls it, garbles it, or replays a recorded
//! frame; an unpinned certificate; TLS against plain TCP (load: `mpc_load.rs`). Every fault must end every party with a clear error naming the culprit
//! within the timeout, and no party but the receiver ever holds an output.

mod common;

use common::*;
use secc_ir::lowered::mpc::Plan;
use secc_runtime::mpc::net::Security;
use secc_runtime::mpc::session::{fresh_tls, run_local_with, run_parties, PartyConfig, PartyReport};
use secc_runtime::mpc::tls::{Identity, Tls};
use secc_runtime::mpc::MpcError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

fn linreg() -> (Plan, Vec<Vec<f32>>) {
    let (_, plan) = mpc_plan("linreg_8");
    (plan, rows("linreg_8", "test.csv", 8)[..2].to_vec())
}

/// Three listeners on loopback and their addresses.
fn loopback() -> (Vec<TcpListener>, [SocketAddr; 3]) {
    let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    (listeners, addrs)
}

/// Runs a session in which party 2's outgoing link to party 1 goes through `relay`
/// (given party 1's address, it returns the address party 2 dials instead). Returns
/// each party's result and how long the slowest took.
fn session(
    plan: &Plan,
    samples: &[Vec<f32>],
    security: [Security; 3],
    repeat: usize,
    relay: impl FnOnce(SocketAddr) -> SocketAddr,
) -> (Vec<Result<PartyReport, MpcError>>, Duration) {
    let (listeners, addrs) = loopback();
    let mut view2 = addrs;
    view2[1] = relay(addrs[1]);
    let configs = security.map(|security| PartyConfig { id: 0, addrs, security, timeout: TIMEOUT, repeat });
    let configs =
        [0, 1, 2].map(|id| PartyConfig { id, addrs: if id == 2 { view2 } else { addrs }, ..configs[id].clone() });
    let start = Instant::now();
    let results = run_parties(plan, samples, listeners, &configs);
    (results, start.elapsed())
}

/// Checks every party failed, soon enough, and that the errors of parties 0 and 1
/// name party 2 (the one behind the faulty link); returns the errors.
fn all_fail_naming_party_2(results: Vec<Result<PartyReport, MpcError>>, took: Duration) -> Vec<String> {
    assert!(took < 3 * TIMEOUT + Duration::from_secs(1), "the parties took {took:?} to give up");
    let errors: Vec<String> = results
        .into_iter()
        .map(|r| match r {
            Ok(rep) => panic!("party {} finished (outputs: {})", rep.id, rep.outputs.is_some()),
            Err(e) => e.to_string(),
        })
        .collect();
    for e in &errors[..2] {
        assert!(e.contains("party 2"), "the error names the faulty party: {errors:?}");
    }
    errors
}

/// Relays one connection to `target`, passing the first `after` bytes from the dialler
/// unchanged and then doing `fault`; bytes back to the dialler pass unchanged.
fn relay_bytes(target: SocketAddr, after: usize, fault: ByteFault) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut from, _) = l.accept().unwrap();
        let mut to = TcpStream::connect(target).unwrap();
        let (mut back_from, mut back_to) = (to.try_clone().unwrap(), from.try_clone().unwrap());
        std::thread::spawn(move || std::io::copy(&mut back_from, &mut back_to));
        let mut passed = 0;
        let mut buf = [0u8; 4096];
        let mut noise = 0x9e37_79b9_7f4a_7c15u64;
        loop {
            // Stop each read at `after`, so the fault starts exactly there.
            let cap = if passed < after { (after - passed).min(buf.len()) } else { buf.len() };
            let n = match from.read(&mut buf[..cap]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if passed >= after {
                match fault {
                    // Keep both sockets open and move nothing, as a hung peer would.
                    ByteFault::Stall => {
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    ByteFault::Garbage => buf[..n].iter_mut().for_each(|b| {
                        noise ^= noise << 13;
                        noise ^= noise >> 7;
                        noise ^= noise << 17;
                        *b = noise as u8;
                    }),
                }
            }
            passed += n;
            if to.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    addr
}

#[derive(Clone, Copy)]
enum ByteFault {
    Stall,
    Garbage,
}

/// Relays one plain link to `target` frame by frame (after the 72-byte hello): `edit`
/// gets each frame's index and bytes and returns the frames to send in its place.
fn relay_frames(
    target: SocketAddr,
    mut edit: impl FnMut(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut from, _) = l.accept().unwrap();
        let mut to = TcpStream::connect(target).unwrap();
        let mut hello = [0u8; 72];
        if from.read_exact(&mut hello).is_err() || to.write_all(&hello).is_err() {
            return;
        }
        for i in 0.. {
            let mut frame = vec![0u8; 40];
            if from.read_exact(&mut frame).is_err() {
                return;
            }
            let len = u64::from_le_bytes(frame[32..40].try_into().unwrap()) as usize;
            // Kind 1 (abort) carries the lost party in the length field, no payload.
            let payload = if frame[7] == 0 { len } else { 0 };
            frame.resize(40 + payload, 0);
            if from.read_exact(&mut frame[40..]).is_err() {
                return;
            }
            for f in edit(i, frame) {
                if to.write_all(&f).is_err() {
                    return;
                }
            }
        }
    });
    addr
}

#[test]
fn tls_and_plain_sessions_agree_and_only_the_receiver_gets_outputs() {
    let (plan, xs) = linreg();
    let tls = run_local_with(&plan, &xs, fresh_tls(), TIMEOUT, 1).unwrap();
    let plain = run_local_with(&plan, &xs, [Security::Plain, Security::Plain, Security::Plain], TIMEOUT, 1).unwrap();
    let receiver = plan.roles.receiver;
    let (a, b) = (tls[receiver].outputs.as_ref().unwrap(), plain[receiver].outputs.as_ref().unwrap());
    assert_eq!(a.len(), xs.len());
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        // Truncation rounds up or down at random, in the last fixed-point bit (2^-18).
        assert!((x - y).abs() <= 1e-4, "TLS {x} vs plain {y}");
    }
    for r in tls.iter().chain(&plain).filter(|r| r.id != receiver) {
        assert!(r.outputs.is_none(), "party {} holds an output", r.id);
    }
    // Same rounds and payload bytes: TLS changes the links, not the protocol.
    assert_eq!(tls.each_ref().map(|r| r.runs[0].0), plain.each_ref().map(|r| r.runs[0].0));
}

#[test]
fn an_unpinned_certificate_is_rejected_by_both_other_parties() {
    let (plan, xs) = linreg();
    let ids = [Identity::generate(), Identity::generate(), Identity::generate()];
    let pins = [ids[0].pin(), ids[1].pin(), ids[2].pin()];
    // Party 2 holds another key than the one the parties file pins for it.
    let impostor = Identity::generate();
    let mut impostor_pins = pins;
    impostor_pins[2] = impostor.pin();
    let security = [
        Security::Tls(Tls::new(0, &ids[0], pins).unwrap()),
        Security::Tls(Tls::new(1, &ids[1], pins).unwrap()),
        Security::Tls(Tls::new(2, &impostor, impostor_pins).unwrap()),
    ];
    let (results, took) = session(&plan, &xs, security, 1, |a| a);
    let errors = all_fail_naming_party_2(results, took);
    for e in &errors[..2] {
        assert!(e.contains("TLS handshake") && e.contains("pins for party 2"), "{e}");
    }
}

#[test]
fn a_stalled_link_times_out_naming_the_peer() {
    let (plan, xs) = linreg();
    let (results, took) = session(&plan, &xs, fresh_tls(), 1000, |a| relay_bytes(a, 4096, ByteFault::Stall));
    let errors = all_fail_naming_party_2(results, took);
    assert!(errors[1].contains("party 2 stalled"), "{errors:?}");
}

#[test]
fn garbage_on_a_link_is_refused() {
    let (plan, xs) = linreg();
    // Under TLS the relay breaks a record: the authentication tag no longer matches.
    let (results, took) = session(&plan, &xs, fresh_tls(), 1000, |a| relay_bytes(a, 4096, ByteFault::Garbage));
    let errors = all_fail_naming_party_2(results, took);
    assert!(errors[1].contains("link to party 2 failed"), "{errors:?}");
    // On plain TCP the frame header gives it away.
    let plain = [Security::Plain, Security::Plain, Security::Plain];
    let (results, took) = session(&plan, &xs, plain, 3, |a| relay_bytes(a, 72 + 80, ByteFault::Garbage));
    let errors = all_fail_naming_party_2(results, took);
    assert!(errors[1].contains("party 2 sent garbage"), "{errors:?}");
}

#[test]
fn a_replayed_frame_is_refused_by_its_round_or_its_session() {
    let (plan, xs) = linreg();
    let plain = || [Security::Plain, Security::Plain, Security::Plain];
    // Within a session: frame 1 again just before frame 3.
    let mut seen = Vec::new();
    let replay = move |i: usize, f: Vec<u8>| {
        seen.push(f.clone());
        if i == 3 {
            vec![seen[1].clone(), f]
        } else {
            vec![f]
        }
    };
    let (results, took) = session(&plan, &xs, plain(), 3, |a| relay_frames(a, replay));
    let errors = all_fail_naming_party_2(results, took);
    assert!(errors[1].contains("party 2 sent garbage") && errors[1].contains("frame of round"), "{errors:?}");

    // From an earlier session: record one, then swap its frame 2 into the next one,
    // where frame 2 has the same round.
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let tape = recorded.clone();
    let record = move |_: usize, f: Vec<u8>| {
        tape.lock().unwrap().push(f.clone());
        vec![f]
    };
    let (results, _) = session(&plan, &xs, plain(), 3, |a| relay_frames(a, record));
    assert!(results.iter().all(Result::is_ok), "the recorded session runs");
    let old = recorded.lock().unwrap()[2].clone();
    let swap = move |i: usize, f: Vec<u8>| vec![if i == 2 { old.clone() } else { f }];
    let (results, took) = session(&plan, &xs, plain(), 3, |a| relay_frames(a, swap));
    let errors = all_fail_naming_party_2(results, took);
    assert!(errors[1].contains("frame of another session"), "{errors:?}");
}

#[test]
fn parties_started_on_different_terms_stop_at_once() {
    let (plan, xs) = linreg();
    let (listeners, addrs) = loopback();
    // Party 2 was told to run the plan twice, the others once.
    let configs = [0, 1, 2].map(|id| PartyConfig {
        id,
        addrs,
        security: Security::Plain,
        timeout: TIMEOUT,
        repeat: if id == 2 { 2 } else { 1 },
    });
    let start = Instant::now();
    let results = run_parties(&plan, &xs, listeners, &configs);
    let errors = all_fail_naming_party_2(results, start.elapsed());
    assert!(start.elapsed() < TIMEOUT, "the hello tells at once");
    for e in &errors[..2] {
        assert!(e.contains("party 2 was started with another plan or another --repeat count"), "{e}");
    }
}
