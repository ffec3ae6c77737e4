#![allow(dead_code)]

pub mod fake_daemon;
pub mod fake_loki;
