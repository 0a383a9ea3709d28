//! A UDP echo server for the network tests (busybox's nc has no UDP): binds
//! 0.0.0.0:PORT, prints each datagram on stdout and answers it with `pong`.
//! net.rs compiles it with rustc, statically, and bind-mounts it into the
//! container. Not a module of the test binary.

use std::io::Write;
use std::net::UdpSocket;

fn main() {
    let port = std::env::args().nth(1).expect("usage: udp-echo PORT");
    let socket = UdpSocket::bind(format!("0.0.0.0:{port}")).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        std::io::stdout().write_all(&buf[..n]).unwrap();
        socket.send_to(b"pong\n", from).unwrap();
    }
}
