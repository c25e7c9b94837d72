//! A round-robin TCP load balancer on loopback, as users put in front of several API replicas:
//! each new connection goes to the next backend, and one that refuses the connection is skipped
//! for the next. Connections already open to a backend that dies break, as they do behind a real
//! balancer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// A running balancer; it stops with the test's runtime.
pub struct Balancer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Balancer {
    /// Balances over `backends`, each `host:port` or `http://host:port`.
    pub async fn start(backends: &[String]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind balancer");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let backends: Arc<Vec<String>> = Arc::new(
            backends
                .iter()
                .map(|b| b.trim_start_matches("http://").to_owned())
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    for turn in 0..backends.len() {
                        let backend = &backends[(first + turn) % backends.len()];
                        if let Ok(mut server) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                });
            }
        });
        Self { base }
    }
}
