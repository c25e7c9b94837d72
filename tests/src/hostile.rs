//! Receivers that misbehave at the TCP level, as other people's servers do: they reset the
//! connection, hang without answering, trickle their answer a byte at a time, or answer with a
//! body far larger than anyone should read.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the receiver misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Reads the request, then closes the connection with a reset.
    Reset,
    /// Reads the request and never answers.
    Hang,
    /// Answers 200 a byte every 200 ms, forever.
    Trickle,
    /// Answers 200 with a 20 MiB body.
    Huge,
    /// Answers 200 with a binary body full of NUL bytes.
    Binary,
}

/// Starts a misbehaving receiver; returns its URL.
pub async fn start(kind: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hostile", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buffer).await;
                match kind {
                    Misbehaviour::Reset => {
                        // SO_LINGER 0 turns the close into a reset; the drop does not block.
                        if let Ok(std_socket) = socket.into_std() {
                            let _ = socket2::SockRef::from(&std_socket)
                                .set_linger(Some(Duration::ZERO));
                        }
                    }
                    Misbehaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Misbehaviour::Trickle => {
                        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
                        if socket.write_all(head).await.is_err() {
                            return;
                        }
                        loop {
                            if socket.write_all(b"x").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    Misbehaviour::Binary => {
                        let body = b"\x00\x01\x02binary\x00\xff";
                        let head =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body).await;
                    }
                    Misbehaviour::Huge => {
                        let size = 20 * 1024 * 1024;
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                        if socket.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b'y'; 64 * 1024];
                        for _ in 0..(size / chunk.len()) {
                            if socket.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    url
}
