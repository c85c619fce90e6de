//! One machine ledger for both drivers (`sim/src/cloud/ledger.rs`): a live run and a simulated
//! run of the same fleet bill the same machine the same way. The live driver once billed a
//! multi-slot docker-autoscaler instance without its slot factor; now both go through
//! `MachineLedger::retire`, and this test holds them to the same bytes.

use std::collections::BTreeMap;

use fleetsim::cloud::ec2::{MachineType, SimCloud};
use fleetsim::cloud::prices::Market;
use fleetsim::engine::{CollectRecords, Engine, ListSource};
use fleetsim_core::docker_machine::RemovalReason;
use fleetsim_core::{Fleet, MachineId, RunnerId, SimTime};
use fleetsim_live::driver::MachineLife;

use crate::common::{fixed_cloud, job, job_specs, machine_rows, one_process};
use crate::docker_autoscaler::{idle, scaler};

fn m5_large(slots: u32) -> MachineType {
    MachineType {
        instance_type: "m5.large".into(),
        region: "us-east-1".into(),
        price_per_hour: 0.096,
        hazard_per_hour: 0.0,
        slots,
        boot: fleetsim::cloud::ec2::BootTime::Fixed(60_000),
    }
}

fn ms(cell: &str) -> Option<SimTime> {
    (!cell.is_empty()).then(|| SimTime((cell.parse::<f64>().unwrap() * 1000.0).round() as u64))
}

/// Two 100 s jobs share one two-slot instance (`capacity_per_instance = 2`). The simulated
/// cloud bills it; the same life, as the live driver records it (`MachineLife`, busy time
/// summed from the records by `JobRecord::machine_busy_ms`, the rule both drivers use), goes
/// through `sim live`'s `write_machines_csv`: the rows and the totals are identical, and the
/// idle share counts both slots.
#[test]
fn a_two_slot_instance_is_billed_alike_live_and_simulated() {
    let spec = one_process(4, 3000, 0, vec![scaler(2, idle(0, 0), 0, 0)]);
    let mut fleet = Fleet::new(spec);
    let list = job_specs(&mut fleet, &[job(1, 10_000, 100_000), job(2, 10_000, 100_000)]);
    let names = vec!["da".to_owned()];
    let types = vec![Some(m5_large(2))];
    let seeds = fleetsim::seeds::SeedTree::new(1);
    let mut cloud =
        SimCloud::new(fixed_cloud(60), types.clone(), &names, seeds, Some(Vec::new())).unwrap();
    let mut records = CollectRecords::default();
    let end = Engine::new()
        .run_with(&mut fleet, &mut ListSource::new(list), &mut records, &mut cloud)
        .expect("run ends");
    let (sim_csv, sim_totals) = cloud.finish(end.end).unwrap();
    let sim_csv = String::from_utf8(sim_csv.unwrap()).unwrap();
    let rows = machine_rows(&sim_csv);
    assert_eq!(rows.len(), 1, "both jobs on one instance");
    let row = &rows[0];

    let reason = [
        RemovalReason::TooManyBuilds,
        RemovalReason::TooManyMachines,
        RemovalReason::TooManyIdle,
        RemovalReason::FailedToCreate,
        RemovalReason::Lost,
    ]
    .into_iter()
    .map(RemovalReason::as_str)
    .find(|r| *r == row["removal_reason"])
    .unwrap_or("");
    let busy_ms = records.records.iter().map(|r| r.machine_busy_ms()).sum();
    let life = MachineLife {
        runner: RunnerId(0),
        created: ms(&row["created_at"]).unwrap(),
        ready: ms(&row["ready_at"]),
        removal_started: ms(&row["removal_started_at"]),
        removed: ms(&row["removed_at"]),
        reason,
        jobs: 2,
        busy_ms,
    };
    let machines = BTreeMap::from([(MachineId(row["machine_id"].parse().unwrap()), life)]);
    let mut live_csv = Vec::new();
    let live_totals = fleetsim::live::write_machines_csv(
        Some(&mut live_csv),
        &machines,
        end.end,
        types,
        &names,
        Market::OnDemand,
    )
    .unwrap();
    assert_eq!(String::from_utf8(live_csv).unwrap(), sim_csv);
    assert_eq!(live_totals.cost_usd, sim_totals.cost_usd);
    assert_eq!(live_totals.idle_cost_usd, sim_totals.idle_cost_usd);
    assert_eq!(live_totals.billed_s, sim_totals.billed_s);

    // The busy share counts both slots: 200 job-seconds of 2 × billed seconds.
    let billed_s: f64 = row["billed_s"].parse().unwrap();
    let busy_share = busy_ms as f64 / (2.0 * billed_s * 1000.0);
    let idle_share = sim_totals.idle_cost_usd / sim_totals.cost_usd;
    assert!((idle_share - (1.0 - busy_share)).abs() < 1e-9, "{idle_share} vs {busy_share}");
    assert!(
        busy_share < 0.9,
        "a one-slot bill would call the instance {:.0} % busy",
        busy_share * 200.0
    );
}
