//! The simulated cloud: EC2 prices and interruption bands ([`prices`]), the simulated EC2
//! account that creates and interrupts autoscaled machines ([`ec2`]), and the ledger that
//! bills every machine and writes `machines.csv`, simulated or live ([`ledger`]).

pub mod ec2;
pub mod ledger;
pub mod prices;
