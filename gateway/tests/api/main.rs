//! Black-box tests of the `pushgateway` binary over HTTP: every test starts its own
//! gateway on a free port, so they run in parallel. Expectations follow upstream
//! prometheus/pushgateway v1.11.

#![allow(clippy::unwrap_used)]

mod aggregate;
mod cache;
mod cli;
mod consistency;
mod cost;
mod endpoints;
mod expiry;
mod exposition;
mod failure_time;
mod flags;
mod grouping;
mod groups;
mod gzip;
mod helpers;
mod http;
mod json_api;
mod listen;
mod metrics_pages;
mod model;
mod ordering;
mod otlp;
mod parsing;
mod persist_helpers;
mod persistence;
mod protobuf;
mod push_semantics;
mod quota;
mod scrape_integrity;
mod strict;
mod ttl;
mod unchecked;
