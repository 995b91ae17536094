//! `fjord serve`: wires storage, broker core and the Kafka front-end together, and owns the
//! process lifecycle (data directory lock, signals, graceful shutdown).
use crate::settings::{ServeArgs, Settings};
use anyhow::{bail, Context};
use fjord_broker::Broker;
use fjord_kafka::KafkaOptions;
use fjord_storage::LogManager;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args)?;
    init_logging(&settings.log_format);
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let _lock = lock_data_dir(&settings.data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fjord")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(settings))
}

/// Holds an exclusive lock on `<data-dir>/.lock` for the life of the process, so two brokers
/// can never write the same logs.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "data directory {} is in use by another fjord process (lock file {})",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let data_dir = &settings.data_dir;
    let storage = LogManager::open(data_dir, settings.manager_options())
        .with_context(|| format!("opening storage in {}", data_dir.display()))?;
    let broker = Broker::open(data_dir, settings.broker_config(), storage)
        .with_context(|| format!("loading topics from {}", data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let (advertised_host, advertised_port) = settings.advertised()?;
    let options = KafkaOptions {
        advertised_host,
        advertised_port,
        max_request_bytes: settings.socket_request_max_bytes,
        idle_timeout: settings.idle_timeout(),
        ..KafkaOptions::default()
    };
    tracing::info!(
        listen = %settings.listen,
        advertise = %settings.advertise,
        data_dir = %data_dir.display(),
        node_id = broker.node_id(),
        cluster_id = broker.cluster_id(),
        topics = broker.topics().len(),
        "fjord {} serving Kafka clients",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!(config = %serde_json::to_string(&settings).unwrap_or_default(), "configuration in effect");
    broker.start_producer_snapshots(settings.producer_snapshot_interval());
    broker.start_transaction_sweep();
    broker.start_delivery();
    let (stop, stopped) = watch::channel(false);
    start_http(&settings, broker.clone(), stopped.clone()).await;
    let server = tokio::spawn(fjord_kafka::serve(
        listener,
        broker.clone(),
        options,
        stopped,
    ));
    wait_for_signal().await?;
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop.send(true);
    server.await.context("Kafka listener task failed")?;
    broker.shutdown().context("flushing logs at shutdown")?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The operator HTTP listener. It is secondary to the Kafka listener: if it cannot start, the
/// broker still serves clients and says why in the log.
async fn start_http(settings: &Settings, broker: Arc<Broker>, stopped: watch::Receiver<bool>) {
    let prometheus = match fjord_http::install_recorder() {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "metrics disabled: could not install the recorder");
            return;
        }
    };
    match tokio::net::TcpListener::bind(settings.http_listen).await {
        Ok(listener) => {
            let address = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(http = %address, "serving /metrics and /health");
            tokio::spawn(async move {
                if let Err(e) = fjord_http::serve(listener, broker, prometheus, stopped).await {
                    tracing::warn!(error = %e, "HTTP listener failed");
                }
            });
        }
        Err(e) => {
            tracing::warn!(http = %settings.http_listen, error = %e, "HTTP listener disabled")
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
    }
    Ok(())
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
