#![allow(dead_code)]

pub mod connect_proxy;
pub mod docker;
pub mod fake_daemon;
pub mod fake_docker_api;
pub mod fake_loki;
pub mod loki_ring;
pub mod push;
pub mod real_loki;
pub mod scrape;
pub mod tls;
