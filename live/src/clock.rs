//! The one place live mode reads a clock.
//!
//! The core and the simulator never read the wall clock (clippy.toml bans
//! `Instant::now`/`SystemTime::now`). Live mode has to: its run time is the wall clock since
//! the start, multiplied by `--speed`, so a one-hour trace at `--speed 60` takes a minute. Every
//! read goes through this module, on tokio's monotonic clock (which also lets tokio's timers
//! and this clock agree exactly).

use std::time::Duration;

use fleetsim_core::SimTime;
use tokio::time::Instant;

/// Run time on the scaled wall clock.
#[derive(Debug, Clone, Copy)]
pub struct LiveClock {
    start: Instant,
    speed: f64,
}

/// Reads tokio's monotonic clock: the single allowed wall-clock read of the workspace.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

/// Seconds since the Unix epoch: only to make run ids unique across processes.
#[allow(clippy::disallowed_methods)]
pub fn wall_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The wall-clock date, for comparing with an S3 object's `Last-Modified` as GitLab Runner's
/// cache extractor compares it with a local file's modification time.
#[allow(clippy::disallowed_methods)]
pub fn file_time_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

impl LiveClock {
    /// A clock whose time 0 is now, running `speed` times faster than the wall clock.
    pub fn start(speed: f64) -> LiveClock {
        assert!(speed > 0.0 && speed.is_finite(), "speed is validated by the caller");
        LiveClock { start: wall_now(), speed }
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Run time now, in ms.
    pub fn now(&self) -> SimTime {
        let wall = wall_now().saturating_duration_since(self.start);
        SimTime((wall.as_secs_f64() * 1000.0 * self.speed) as u64)
    }

    /// The wall-clock instant at which run time reaches `t`.
    pub fn instant_of(&self, t: SimTime) -> Instant {
        self.start + self.wall(t.as_ms())
    }

    /// Wall-clock length of `run_ms` of run time.
    pub fn wall(&self, run_ms: u64) -> Duration {
        Duration::from_secs_f64(run_ms as f64 / 1000.0 / self.speed)
    }

    /// Run-time length (ms) of a wall-clock duration.
    pub fn run_ms(&self, wall: Duration) -> u64 {
        (wall.as_secs_f64() * 1000.0 * self.speed).round() as u64
    }
}

/// Measures real (unscaled) latencies: container create/start/stop, S3 requests.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Stopwatch {
        Stopwatch(wall_now())
    }

    /// Wall time since the start.
    pub fn elapsed(&self) -> Duration {
        wall_now().saturating_duration_since(self.0)
    }

    /// Wall time since the start, in microseconds (the histograms' unit).
    pub fn micros(&self) -> u64 {
        self.elapsed().as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn run_time_is_scaled() {
        let c = LiveClock::start(60.0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(c.now(), SimTime(60_000));
        assert_eq!(c.wall(60_000), Duration::from_secs(1));
        assert_eq!(
            c.instant_of(SimTime(120_000)) - c.instant_of(SimTime(0)),
            Duration::from_secs(2)
        );
    }
}
