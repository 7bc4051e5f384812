//! The processes under test (siem-relay, rsyslog, syslog-ng): generated
//! configs, start, bounded readiness wait, CPU and peak-RSS readings, stop.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    // bind TCP and UDP on the same number so a source can use both
    for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

pub fn render(tmpl: &str, vars: &[(&str, String)]) -> String {
    let mut s = tmpl.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

pub struct Proc {
    pub name: String,
    child: Child,
    pub pid: u32,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, String> {
        let f = fs::File::create(log).map_err(|e| e.to_string())?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        let pid = child.id();
        Ok(Proc {
            name: name.to_string(),
            child,
            pid,
            log: log.to_path_buf(),
        })
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls until `port` accepts a TCP connection; bounded.
    pub fn wait_ready(&mut self, port: u16, timeout: Duration) -> Result<(), String> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if !self.alive() {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!(
                    "{} exited during start-up ({status}); log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{} not listening on {port} after {timeout:?}; log:\n{}",
            self.name,
            self.log_tail()
        ))
    }

    /// utime + stime of the whole process (all threads), seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        let s = fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        thread_stat(&s).map(|(_, secs)| secs)
    }

    /// utime + stime of the live threads, seconds, summed by thread name
    /// (`comm`), sorted by name. A thread that has exited is not here (its
    /// time still counts in [`Proc::cpu_secs`]).
    pub fn thread_cpu_secs(&self) -> Vec<(String, f64)> {
        let mut by_name = std::collections::BTreeMap::<String, f64>::new();
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        for task in tasks.flatten() {
            let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
                continue; // exited meanwhile
            };
            if let Some((name, secs)) = thread_stat(&stat) {
                *by_name.entry(name.to_string()).or_default() += secs;
            }
        }
        by_name.into_iter().collect()
    }

    /// RssAnon (resident anonymous memory: heap and stacks, not the mapped
    /// ring's page cache), KiB, now.
    pub fn anon_rss_kib(pid: u32) -> Option<u64> {
        let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines()
            .find(|l| l.starts_with("RssAnon:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The name (`comm`) and utime + stime in seconds of a `/proc/.../stat` line
/// (a process's or a thread's: the same layout).
pub fn thread_stat(stat: &str) -> Option<(&str, f64)> {
    // the name is in parentheses and may itself hold ') '
    let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some((name, (ut + st) / hz))
}
