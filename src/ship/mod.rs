//! Delivery to Loki: one task per endpoint (a distinct Loki URL and
//! client settings), each container a lane of it (see [`endpoint`]).
//!
//! An endpoint with no lanes left keeps its connections for
//! `ENDPOINT_IDLE`, then its task ends and its client and connections are
//! dropped.

pub mod client;
pub mod encode;
pub mod endpoint;
pub mod pace;
pub mod policy;
pub mod secrets;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::config::options::EndpointConfig;
use crate::observe::EndpointCounters;
use client::Pusher;
use endpoint::{Command, Endpoint, Lane};

/// Makes the client of a new endpoint (it may read TLS files: async).
pub type ClientFactory = Box<
    dyn Fn(EndpointConfig) -> client::BoxFuture<'static, Result<Arc<dyn Pusher>, String>>
        + Send
        + Sync,
>;

/// All endpoints.
pub struct Shipper {
    endpoints: Mutex<HashMap<EndpointConfig, Registered>>,
    /// One client made at a time per endpoint: many containers of one
    /// endpoint starting (or re-attached) together wait for the first
    /// instead of each reading its files, which the bound on file reads
    /// would refuse.
    making: Mutex<HashMap<EndpointConfig, Weak<tokio::sync::Mutex<()>>>>,
    make_client: ClientFactory,
    drain: watch::Sender<Option<Instant>>,
    tasks: TaskTracker,
    idle: Duration,
}

struct Registered {
    commands: mpsc::UnboundedSender<Command>,
    counters: Weak<EndpointCounters>,
}

impl Shipper {
    pub fn new(make_client: ClientFactory) -> Arc<Shipper> {
        Shipper::with_idle(make_client, crate::config::settings::DEFAULT_ENDPOINT_IDLE)
    }

    /// With a custom idle time before an endpoint without lanes ends.
    pub fn with_idle(make_client: ClientFactory, idle: Duration) -> Arc<Shipper> {
        Arc::new(Shipper {
            endpoints: Mutex::new(HashMap::new()),
            making: Mutex::new(HashMap::new()),
            make_client,
            drain: watch::channel(None).0,
            tasks: TaskTracker::new(),
            idle,
        })
    }

    /// The real client for each endpoint; an endpoint without containers
    /// ends (with its connections) after `idle`.
    pub fn http(idle: Duration) -> Arc<Shipper> {
        Shipper::with_idle(
            Box::new(|config| {
                Box::pin(async move {
                    client::ReloadingClient::new(&config)
                        .await
                        .map(|c| Arc::new(c) as Arc<dyn Pusher>)
                })
            }),
            idle,
        )
    }

    /// Hands a lane to its endpoint if that one runs; gives it back if not.
    fn send(&self, config: &EndpointConfig, lane: Box<Lane>) -> Result<(), Box<Lane>> {
        let endpoints = self.endpoints.lock().expect("shipper lock poisoned");
        match endpoints.get(config) {
            Some(registered) => match registered.commands.send(Command::Attach(lane)) {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendError(Command::Attach(lane))) => Err(lane),
            },
            None => Err(lane),
        }
    }

    /// Makes sure the endpoint runs (creating its client, which reads its
    /// TLS files), so a container whose options cannot reach Loki is
    /// refused before anything is created for it.
    pub async fn prepare(self: &Arc<Self>, config: &EndpointConfig) -> Result<(), String> {
        let running = || {
            self.endpoints
                .lock()
                .expect("shipper lock poisoned")
                .contains_key(config)
        };
        if running() {
            return Ok(());
        }
        let gate = self.gate(config);
        let _turn = gate.lock().await;
        if running() {
            return Ok(()); // made while this one waited
        }
        let client = (self.make_client)(config.clone()).await?;
        self.start(config, client, None);
        Ok(())
    }

    /// The lock under which `config`'s client is made.
    fn gate(&self, config: &EndpointConfig) -> Arc<tokio::sync::Mutex<()>> {
        let mut making = self.making.lock().expect("shipper lock poisoned");
        making.retain(|_, gate| gate.strong_count() > 0);
        if let Some(gate) = making.get(config).and_then(Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        making.insert(config.clone(), Arc::downgrade(&gate));
        gate
    }

    /// Starts delivering a container's lines to its endpoint, creating the
    /// endpoint (and its client) if it is not running.
    pub async fn attach(
        self: &Arc<Self>,
        config: &EndpointConfig,
        lane: Lane,
    ) -> Result<(), String> {
        let Err(lane) = self.send(config, Box::new(lane)) else {
            return Ok(());
        };
        let gate = self.gate(config);
        let _turn = gate.lock().await;
        let Err(lane) = self.send(config, lane) else {
            return Ok(()); // made while this one waited
        };
        let client = (self.make_client)(config.clone()).await?;
        self.start(config, client, Some(*lane));
        Ok(())
    }

    /// Starts an endpoint task with `lane` (or hands the lane to one that
    /// another caller started meanwhile).
    fn start(
        self: &Arc<Self>,
        config: &EndpointConfig,
        client: Arc<dyn Pusher>,
        lane: Option<Lane>,
    ) {
        let mut endpoints = self.endpoints.lock().expect("shipper lock poisoned");
        let lane = match (endpoints.get(config), lane) {
            (Some(registered), Some(lane)) => {
                match registered.commands.send(Command::Attach(Box::new(lane))) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(Command::Attach(lane))) => Some(*lane),
                }
            }
            (Some(registered), None) if !registered.commands.is_closed() => return,
            (_, lane) => lane,
        };
        let counters = Arc::new(EndpointCounters::new(config.url.clone()));
        let mut endpoint = Endpoint::new(
            config.clone(),
            client,
            self.drain.subscribe(),
            counters.clone(),
        );
        if let Some(lane) = lane {
            endpoint.attach(lane);
        }
        let (commands, mut rx) = mpsc::unbounded_channel();
        endpoints.insert(
            config.clone(),
            Registered {
                commands: commands.clone(),
                counters: Arc::downgrade(&counters),
            },
        );
        let shipper = Arc::downgrade(self);
        let key = config.clone();
        let idle = self.idle;
        self.tasks.spawn(async move {
            loop {
                endpoint.run(&mut rx, idle).await;
                let Some(shipper) = shipper.upgrade() else {
                    return;
                };
                let mut endpoints = shipper.endpoints.lock().expect("shipper lock poisoned");
                // A lane may have arrived while it was deciding to end.
                let mut more = false;
                while let Ok(Command::Attach(lane)) = rx.try_recv() {
                    endpoint.attach(*lane);
                    more = true;
                }
                let stopping = shipper.drain.borrow().is_some();
                if more && !stopping {
                    continue;
                }
                if endpoints
                    .get(&key)
                    .is_some_and(|r| r.commands.same_channel(&commands))
                {
                    endpoints.remove(&key);
                }
                return;
            }
        });
    }

    /// Counters of the endpoints that are running.
    pub fn counters(&self) -> Vec<Arc<EndpointCounters>> {
        self.endpoints
            .lock()
            .expect("shipper lock poisoned")
            .values()
            .filter_map(|r| r.counters.upgrade())
            .collect()
    }

    /// How many endpoints are running.
    pub fn endpoints(&self) -> usize {
        self.endpoints.lock().expect("shipper lock poisoned").len()
    }

    /// Delivers what is pending until `deadline`, then returns (what is
    /// left stays in the journals).
    pub async fn drain(&self, deadline: Instant) {
        self.drain.send_replace(Some(deadline));
        self.tasks.close();
        let grace = deadline + Duration::from_millis(500);
        if tokio::time::timeout_at(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over with pushes still running");
        }
    }
}
