//! The simulated cloud: EC2 prices and interruption bands ([`prices`]) and the simulated
//! EC2 account that creates, bills and interrupts autoscaled machines ([`ec2`]).

pub mod ec2;
pub mod prices;
