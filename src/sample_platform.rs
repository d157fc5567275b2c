//! TEMPORARY STUB.
use std::time::Duration;
#[derive(Debug, Clone)] pub enum Endpoint { Deploy, Status, Login, Write, Read, Delete, List, All }
#[derive(Debug, Clone)] pub enum FaultMode { Error { status: u16 }, Slow { delay: Duration }, Hang, Stuck, Heal }
#[derive(Debug, Clone)] pub struct FaultSpec { pub endpoint: Endpoint, pub mode: FaultMode }
impl std::str::FromStr for FaultSpec { type Err = String; fn from_str(_s: &str) -> Result<Self, String> { Err(String::new()) } }
pub struct PlatformOptions { pub user: String, pub password: String, pub deploy_delay: Duration, pub read_delay: Duration, pub faults: Vec<FaultSpec> }
impl Default for PlatformOptions { fn default() -> Self { Self { user: "prober".into(), password: "demo-password".into(), deploy_delay: Duration::from_secs(1), read_delay: Duration::ZERO, faults: vec![] } } }
#[derive(Clone)] pub struct PlatformState;
impl PlatformState { pub fn inject(&self, _f: FaultSpec) {} pub fn heal_all(&self) {} }
pub struct RunningPlatform { pub url: String, pub state: PlatformState }
pub async fn start(_l: tokio::net::TcpListener, _o: PlatformOptions) -> std::io::Result<RunningPlatform> { Ok(RunningPlatform { url: String::new(), state: PlatformState }) }
