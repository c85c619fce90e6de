//! The Docker engine port (bollard): connecting with a deadline, volumes for machines, and
//! short-lived job containers.
//!
//! Every object created here carries the label `fleetsim.run=<run id>` so that the end of a
//! run, a Ctrl-C or `sim live cleanup` can find and remove it. Containers run unprivileged,
//! with every capability dropped, `no-new-privileges` and no network (`network_mode: none`).
//!
//! A job's container lives as GitLab Runner's docker executor runs it
//! (`executors/docker/docker_command.go`, `internal/exec/exec.go`), each phase timed (µs):
//! ```text
//!   create (sh, stdin open) ─► per stage: attach ─► start ─► script on stdin ─► wait ─┐
//!                                   ▲                                              │
//!                                   └──────────── next stage ◄─────────────────────┘
//!   ─► remove (the executor's Cleanup)
//! ```
//! Docker's archive API works on created and stopped containers and sees their volumes, which
//! is how the cache archives move between the driver and the job's volume.

// bollard's API takes std HashMaps for labels and filters; nothing here iterates them.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::LiveError;
use crate::clock::Stopwatch;

/// The label every object of a run carries.
pub const RUN_LABEL: &str = "fleetsim.run";

/// Where a machine's (or runner host's) volume is mounted in job containers.
pub const VOLUME_MOUNT: &str = "/fleetsim";

/// A Docker error met while carrying out a command (counted in the report, not fatal).
#[derive(Debug, Clone)]
pub struct DockerError(pub String);

impl std::fmt::Display for DockerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<bollard::errors::Error> for DockerError {
    fn from(e: bollard::errors::Error) -> Self {
        DockerError(e.to_string())
    }
}

/// Connects to the engine at `url` (`unix:///path`, `tcp://host:port`, `http://host:port`;
/// default: `DOCKER_HOST`, else `/var/run/docker.sock`), checks that it answers within
/// `timeout`, and agrees on an API version (Debian's 20.10 engine speaks 1.41).
pub async fn connect(url: Option<&str>, timeout: Duration) -> Result<Docker, LiveError> {
    let url = url
        .map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    let secs = timeout.as_secs().max(1);
    let version = bollard::API_DEFAULT_VERSION;
    let unreachable = |why: String| {
        LiveError::Docker(format!(
            "the Docker engine at {url} does not answer: {why} (is dockerd running? see README \"Live mode\")"
        ))
    };
    let docker = if let Some(path) = url.strip_prefix("unix://") {
        Docker::connect_with_unix(path, secs, version)
    } else if url.starts_with("tcp://") || url.starts_with("http://") {
        Docker::connect_with_http(&url, secs, version)
    } else {
        return Err(LiveError::Docker(format!(
            "--docker {url:?}: expected unix:///path/to/docker.sock, tcp://host:port or http://host:port"
        )));
    }
    .map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(timeout, docker.ping()).await {
        Err(_) => return Err(unreachable(format!("no answer within {} s", timeout.as_secs()))),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(_)) => {}
    }
    match tokio::time::timeout(timeout, docker.negotiate_version()).await {
        Err(_) => Err(unreachable("version negotiation timed out".into())),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Ok(Ok(d)) => Ok(d),
    }
}

/// Timings of one stage on a container, in µs of real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerTimes {
    /// Attach and `POST /containers/{id}/start`.
    pub start_us: u64,
    /// From the start until `wait` returned (the script's own run time).
    pub run_us: u64,
}

/// How a container ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Its exit code; `None` when it vanished (removed from outside) before reporting one.
    pub code: Option<i64>,
    /// Its timings.
    pub times: ContainerTimes,
}

impl Exit {
    /// Whether it exited with 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// The engine, as one run uses it.
#[derive(Debug, Clone)]
pub struct DockerPort {
    docker: Docker,
    run_id: String,
    image: String,
}

impl DockerPort {
    /// A port for run `run_id`, whose job containers use `image`.
    pub fn new(docker: Docker, run_id: &str, image: &str) -> DockerPort {
        DockerPort { docker, run_id: run_id.to_owned(), image: image.to_owned() }
    }

    /// The engine client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(RUN_LABEL.to_owned(), self.run_id.clone())])
    }

    /// Checks that the job image is present (live mode never needs a registry).
    pub async fn check_image(&self) -> Result<(), LiveError> {
        self.docker.inspect_image(&self.image).await.map(|_| ()).map_err(|e| {
            LiveError::Docker(format!(
                "the job image {:?} is not on the Docker engine ({e}); build a minimal one with \
                 `sim live prepare-image` and pass `--image fleetsim/busybox:latest`",
                self.image
            ))
        })
    }

    /// Whether the image is present (the Pull step: an inspect, timed by the caller).
    pub async fn image_present(&self) -> Result<bool, DockerError> {
        match self.docker.inspect_image(&self.image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a labelled volume.
    pub async fn create_volume(&self, name: &str) -> Result<(), DockerError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(self.labels()),
            ..Default::default()
        };
        self.docker.create_volume(req).await?;
        Ok(())
    }

    /// Removes a volume (a missing one is fine: removal is idempotent).
    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(opts)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a job container named `name` as the docker executor does for its helper and
    /// build containers: a shell reading its script from stdin (`OpenStdin`, `StdinOnce`), so
    /// that each stage is one start with the stage's script ([`DockerPort::run_stage`]);
    /// `volume` is mounted at [`VOLUME_MOUNT`]. Returns the create latency in µs.
    pub async fn create_stage_container(
        &self,
        name: &str,
        volume: &str,
    ) -> Result<u64, DockerError> {
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["/bin/sh".into()]),
            env: Some(vec!["PATH=/bin:/usr/bin".into()]),
            labels: Some(self.labels()),
            network_disabled: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            host_config: Some(self.host_config(volume)),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        let t = Stopwatch::start();
        self.docker.create_container(Some(opts), body).await?;
        // `createContainer` inspects the container it created.
        self.docker.inspect_container(name, None).await?;
        Ok(t.micros())
    }

    /// Runs one stage on a container made by [`DockerPort::create_stage_container`], as
    /// `exec.(*defaultDocker).Exec` does: attach (stdin, stdout, stderr), start, write the
    /// script to stdin and close it, read the output to its end, wait for the exit.
    pub async fn run_stage(&self, name: &str, script: &str) -> Result<Exit, DockerError> {
        use tokio::io::AsyncWriteExt;
        let t = Stopwatch::start();
        let opts = bollard::query_parameters::AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut attached = self.docker.attach_container(name, Some(opts)).await?;
        self.docker.start_container(name, None).await?;
        let start_us = t.micros();
        let t = Stopwatch::start();
        attached.input.write_all(script.as_bytes()).await.map_err(io_error)?;
        attached.input.write_all(b"\nexit\n").await.map_err(io_error)?;
        attached.input.shutdown().await.map_err(io_error)?;
        // The output ends when the container's process does; it is not kept.
        while let Some(chunk) = attached.output.next().await {
            if chunk.is_err() {
                break;
            }
        }
        let code = self.wait(name).await;
        Ok(Exit { code, times: ContainerTimes { start_us, run_us: t.micros() } })
    }

    /// Waits for a container to exit: its code, or `None` when it vanished.
    async fn wait(&self, name: &str) -> Option<i64> {
        let mut wait = self.docker.wait_container(name, None);
        match wait.next().await {
            Some(Ok(r)) => Some(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
            Some(Err(_)) | None => None,
        }
    }

    fn host_config(&self, volume: &str) -> HostConfig {
        HostConfig {
            binds: Some(vec![format!("{volume}:{VOLUME_MOUNT}")]),
            network_mode: Some("none".into()),
            privileged: Some(false),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        }
    }

    /// Writes a tar stream into `path` of a created container (Docker's archive API).
    pub async fn upload(&self, name: &str, path: &str, tar: Vec<u8>) -> Result<(), DockerError> {
        let opts = UploadToContainerOptionsBuilder::default().path(path).build();
        self.docker.upload_to_container(name, Some(opts), bollard::body_full(tar.into())).await?;
        Ok(())
    }

    /// Reads `path` of a container as a tar stream; `None` when the path does not exist.
    pub async fn download(&self, name: &str, path: &str) -> Result<Option<Vec<u8>>, DockerError> {
        let opts = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.docker.download_from_container(name, Some(opts));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => out.extend_from_slice(&b),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(out))
    }

    /// Force-removes a container (stopping it); a missing one is fine.
    pub async fn remove(&self, name: &str) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).v(false).build();
        // An error here means it is already gone or the engine is down; the end-of-run sweep
        // by label catches whatever is left.
        let _ = self.docker.remove_container(name, Some(opts)).await;
    }
}

fn io_error(e: std::io::Error) -> DockerError {
    DockerError(format!("writing the stage script: {e}"))
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Containers removed.
    pub containers: usize,
    /// Volumes removed.
    pub volumes: usize,
}

/// Removes every container and volume labelled `fleetsim.run=<run_id>`, or every one with
/// the label at all when `run_id` is `None` (`sim live cleanup`).
pub async fn sweep(docker: &Docker, run_id: Option<&str>) -> Result<Swept, DockerError> {
    let filter = match run_id {
        Some(id) => format!("{RUN_LABEL}={id}"),
        None => RUN_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![filter])]);
    let mut swept = Swept::default();
    let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(opts)).await? {
        if let Some(id) = c.id {
            let opts = RemoveContainerOptionsBuilder::default().force(true).build();
            if docker.remove_container(&id, Some(opts)).await.is_ok() {
                swept.containers += 1;
            }
        }
    }
    let opts = ListVolumesOptionsBuilder::default().filters(&filters).build();
    let volumes = docker.list_volumes(Some(opts)).await?;
    for v in volumes.volumes.unwrap_or_default() {
        let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
        if docker.remove_volume(&v.name, Some(opts)).await.is_ok() {
            swept.volumes += 1;
        }
    }
    Ok(swept)
}

/// Counts containers and volumes labelled with `run_id` (for tests and the final check).
pub async fn count_labelled(docker: &Docker, run_id: &str) -> Result<Swept, DockerError> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{RUN_LABEL}={run_id}")])]);
    let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let containers = docker.list_containers(Some(opts)).await?.len();
    let opts = ListVolumesOptionsBuilder::default().filters(&filters).build();
    let volumes = docker.list_volumes(Some(opts)).await?.volumes.unwrap_or_default().len();
    Ok(Swept { containers, volumes })
}

/// Builds the minimal job image `tag` from a static busybox binary: `FROM scratch`, the
/// binary at `/bin/busybox` and its applets (`sh`, `sleep`, `head`, …) as symbolic links,
/// imported as a root filesystem (`docker import`), so no registry and no build step are
/// needed.
pub async fn prepare_image(
    docker: &Docker,
    busybox: &std::path::Path,
    tag: &str,
) -> Result<(), LiveError> {
    let bin = std::fs::read(busybox).map_err(|e| {
        LiveError::Input(format!(
            "cannot read {} ({e}); install Debian's busybox-static (`apt-get install busybox-static`) \
             or pass --busybox PATH",
            busybox.display()
        ))
    })?;
    let tar = busybox_rootfs(&bin)
        .map_err(|e| LiveError::Docker(format!("building the image tar: {e}")))?;
    let (repo, tag_part) = match tag.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_owned(), t.to_owned()),
        _ => (tag.to_owned(), "latest".to_owned()),
    };
    let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(&repo)
        .tag(&tag_part)
        .build();
    let mut stream = docker.create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
    while let Some(r) = stream.next().await {
        r.map_err(|e| LiveError::Docker(format!("importing {tag}: {e}")))?;
    }
    Ok(())
}

/// The applets job containers use.
const APPLETS: [&str; 12] =
    ["sh", "sleep", "head", "mkdir", "rm", "ls", "cat", "test", "true", "dd", "du", "echo"];

fn busybox_rootfs(bin: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["bin/", "tmp/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if dir == "tmp/" { 0o1777 } else { 0o755 });
        h.set_size(0);
        h.set_cksum();
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(bin.len() as u64);
    h.set_cksum();
    tar.append_data(&mut h, "bin/busybox", bin)?;
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    tar.into_inner()
}
