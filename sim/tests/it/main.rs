//! Integration tests of the `fleetsim` crate: one binary, one module per concern.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a test failure

mod audit_fidelity;
mod audit_machines;
mod cache;
mod cli;
mod common;
mod docker_autoscaler;
mod docker_machine;
mod equivalence;
mod erlang_c;
mod event_queue;
mod generate;
mod go_autoscaler;
mod go_config;
mod go_multi;
mod go_provider;
mod go_timeperiod;
mod hostile;
mod import;
mod invariants;
mod ledger;
mod machine_properties;
mod pipelines;
mod report_page;
mod sweep;
mod timelines;
