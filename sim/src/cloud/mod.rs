//! The simulated cloud. For now: the built-in EC2 price table, used to price runner hosts.
//! (Machine creation, spot interruptions and billing of autoscaled machines come with the
//! docker+machine executor.)

pub mod prices;
