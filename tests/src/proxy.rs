//! A TCP proxy in front of RabbitMQ or Postgres. `cut()` drops every connection and refuses new
//! ones, as a stopped server would; `blackhole()` keeps every connection open and accepts new
//! ones but forwards nothing in either direction, as a network partition does; `restore()` lets
//! new connections through again. The shared servers of the machine keep running for the other
//! tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy.
pub struct Proxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    blackholed: watch::Sender<bool>,
}

impl Proxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (blackholed, _) = watch::channel(false);
        let upstream = upstream.to_owned();
        let accept_up = up.clone();
        let accept_generation = generation.subscribe();
        let accept_blackholed = blackholed.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = accept_generation.clone();
                cut.mark_unchanged();
                let mut blackholed = accept_blackholed.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    if *blackholed.borrow_and_update() {
                        swallow(client).await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let blackholed_now = async { blackholed.wait_for(|on| *on).await.is_ok() };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        _ = cut.changed() => false,
                        stalled = blackholed_now => stalled,
                    };
                    if stalled {
                        // Whatever the server still sends is never delivered either.
                        let _server = server;
                        swallow(client).await;
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
            blackholed,
        }
    }

    /// A Postgres URL through the proxy.
    pub fn postgres_url(&self, database: &str) -> String {
        format!("postgres://postgres@{}/{database}", self.addr)
    }

    /// Forwards nothing any more, on open connections and on new ones, without closing any:
    /// the other side sees neither an answer nor an error.
    pub fn blackhole(&self) {
        self.blackholed.send_replace(true);
    }

    /// An AMQP URL through the proxy.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts and forwards new connections again; blackholed ones stay dead, as flows do
    /// after a partition that outlasted them.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.blackholed.send_replace(false);
    }
}

/// Reads and discards what the client sends until it closes the connection.
async fn swallow(mut client: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}
