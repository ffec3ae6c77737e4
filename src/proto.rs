//! Protobuf types generated at build time from the vendored `proto/` files.

/// Docker's `LogEntry`, the payload of each FIFO frame.
pub mod logdriver {
    include!(concat!(env!("OUT_DIR"), "/logdriver.rs"));
}

/// Loki's `PushRequest`, the body of `POST /loki/api/v1/push`.
pub mod logproto {
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}
