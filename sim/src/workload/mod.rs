//! Workloads that are not a trace file: the seeded pipeline generator ([`generate`]).
//!
//! ```text
//!   GenModel (defaults, [workload.generate], `sim trace gen` flags)
//!        │  + SeedTree (streams workload.arrivals / workload.pipelines / workload.durations)
//!        ▼
//!   Generator: io::Read of trace CSV bytes, produced pipeline by pipeline on demand
//!        ├──► `sim trace gen --out FILE` (the bytes, written)
//!        └──► TraceReader ─► TraceSource (DAG) ─► Engine   (`sim run`, nothing on disk)
//! ```
//!
//! The generator speaks the trace format, so a generated workload goes through exactly the
//! checks and the pipeline model a trace file does, and `sim trace gen` writes the very
//! bytes a scenario with the same model and seed runs.

pub mod generate;
pub mod open;
