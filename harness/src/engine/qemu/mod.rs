//! QEMU's own vmstate.c as an engine: a long-running driver process
//! (harness/qemu/driver.c, built by harness/qemu/build.sh) that builds real
//! `VMStateDescription` tables from our [`Vmsd`] and runs
//! `vmstate_save_state` / `vmstate_load_state` on real malloc'd objects.
//!
//! Addresses: the driver copies every live allocation of the [`Heap`] into
//! a real `malloc` block and relocates the declared pointer slots
//! ([`crate::leak::reach`]) that point into one. After a LOAD, the caller's
//! heap is updated in place: prepared objects keep their simulated
//! addresses (declared pointers into them are translated back), and every
//! allocation QEMU made during the load and did not free is placed at its
//! real address with `Origin::Load { path: "?", allocator }`. Allocations
//! made and freed during the op are not placed; they are in
//! [`QemuEngine::last_events`], the ordered list of every
//! `g_malloc`/`g_malloc0`/`g_try_malloc`/`g_free` of the op.

pub mod protocol;

use super::{Engine, Failed, Run};
use protocol::{Event, HeapObject, Lsan, Object, Reloc, Reply, Request};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use vmstate_reference::{Addr, Dialect, Heap, HeapLimits, Origin, Vmsd};

/// How one engine call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuRun<T> {
    Ok(T),
    /// vmstate_save_state / vmstate_load_state returned `ret` (or, after a
    /// load that returned 0, qemu_file_get_error did).
    Failed {
        ret: i32,
        message: String,
    },
    /// QEMU aborted: the assertion line (`...: Assertion '...' failed.`) or
    /// the allocation failure GLib would abort on.
    Aborted {
        assertion: String,
    },
    /// A sanitizer report (`SUMMARY: ...` plus the first QEMU frame) or a
    /// fatal signal.
    Crashed {
        report: String,
    },
    /// The engine could not run the request (timeout, refused request,
    /// protocol error, unexpected exit).
    Lost(String),
}

impl<T> QemuRun<T> {
    fn cast<U>(self) -> QemuRun<U> {
        match self {
            QemuRun::Ok(_) => unreachable!("cast of Ok"),
            QemuRun::Failed { ret, message } => QemuRun::Failed { ret, message },
            QemuRun::Aborted { assertion } => QemuRun::Aborted { assertion },
            QemuRun::Crashed { report } => QemuRun::Crashed { report },
            QemuRun::Lost(m) => QemuRun::Lost(m),
        }
    }
}

/// The dialect the driver reports for the code it was built from, by the
/// dialect's own name (`qemu-10.x`, `qemu-11.1`, `qemu-master`).
pub fn dialect_of(name: &str) -> Option<Dialect> {
    name.parse().ok()
}

/// What the last request left behind, for oracles that want more than the
/// result.
#[derive(Debug, Clone, Default)]
pub struct LastRun {
    /// Every allocator call of the op, in order (real addresses).
    pub events: Vec<Event>,
    /// LeakSanitizer's verdict after a LOAD (sanitize builds).
    pub lsan: Option<Lsan>,
    /// The driver's stderr during the request.
    pub stderr: String,
}

pub struct QemuEngine {
    path: PathBuf,
    hello: protocol::Hello,
    dialect: Dialect,
    timeout: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    proc: Option<Proc>,
    last: LastRun,
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<io::Result<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
}

const STDERR_KEEP: usize = 1 << 20;

impl Proc {
    fn start(path: &Path, timeout: Duration) -> io::Result<(Proc, protocol::Hello)> {
        let mut cmd = Command::new(path);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in [
            ("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"),
            // Uninitialised heap memory reads as the model's UNINIT_BYTE
            // (0xa5), in glibc (MALLOC_PERTURB_ fills with its complement)
            // and under ASan, instead of whatever the allocator had:
            // QEMU code that relies on g_malloc returning zeros then shows
            // up as it does in the model (AllocAutoAllocUnzeroedTable).
            ("MALLOC_PERTURB_", "90"),
            ("ASAN_OPTIONS", "detect_leaks=1:malloc_fill_byte=165"),
            ("LSAN_OPTIONS", "exitcode=0"),
        ] {
            if std::env::var_os(k).is_none() {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let stderr_thread = thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = sink.lock().unwrap();
                b.extend_from_slice(&chunk[..n]);
                if b.len() > STDERR_KEEP {
                    let cut = b.len() - STDERR_KEEP;
                    b.drain(..cut);
                }
            }
        });
        let (tx, frames) = mpsc::channel();
        thread::spawn(move || {
            loop {
                let mut len = [0u8; 4];
                if let Err(e) = stdout.read_exact(&mut len) {
                    let _ = tx.send(Err(e));
                    return;
                }
                let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
                if let Err(e) = stdout.read_exact(&mut buf) {
                    let _ = tx.send(Err(e));
                    return;
                }
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            }
        });
        let proc = Proc {
            child,
            stdin,
            frames,
            stderr,
            stderr_thread: Some(stderr_thread),
        };
        let hello = match proc.frames.recv_timeout(timeout) {
            Ok(Ok(f)) => protocol::decode_hello(&f)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HELLO from the engine",
            )),
        };
        match hello {
            Ok(h) => Ok((proc, h)),
            Err(e) => {
                let (_, text) = proc.finish(true);
                Err(io::Error::new(e.kind(), format!("{e}: {}", tail(&text))))
            }
        }
    }

    /// Waits for (or kills) the process; returns its status and stderr.
    fn finish(mut self, kill: bool) -> (Option<ExitStatus>, String) {
        if kill {
            let _ = self.child.kill();
        }
        drop(self.stdin);
        let status = self.child.wait().ok();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let text = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        (status, text)
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Classifies a dead engine from its exit status and stderr.
pub fn classify_death<T>(signal: Option<i32>, code: Option<i32>, stderr: &str) -> QemuRun<T> {
    let lines: Vec<&str> = stderr.lines().collect();
    let find = |pat: &dyn Fn(&str) -> bool| lines.iter().find(|l| pat(l)).map(|l| l.trim());
    let sanitizer = find(&|l| {
        l.contains("ERROR: AddressSanitizer")
            || l.contains("ERROR: LeakSanitizer")
            || l.contains("runtime error:")
    });
    if let Some(first) = sanitizer {
        let summary = find(&|l| l.starts_with("SUMMARY: ")).unwrap_or(first);
        // The first stack frame in QEMU's own code (not the sanitizer runtime).
        let frame = lines.iter().map(|l| l.trim()).find(|l| {
            l.starts_with('#')
                && l.contains(" in ")
                && !l.contains("libasan")
                && !l.contains("libubsan")
                && !l.contains("sanitizer")
                && !l.contains("__interceptor")
        });
        let report = match frame {
            Some(f) if summary != first => format!("{summary} [{f}]"),
            Some(f) => format!("{first} [{f}]"),
            None => summary.to_string(),
        };
        return QemuRun::Crashed { report };
    }
    if let Some(a) = find(&|l| l.contains("Assertion") && l.contains("failed")) {
        return QemuRun::Aborted {
            assertion: a.to_string(),
        };
    }
    if let Some(a) = find(&|l| l.contains("failed to allocate") || l.contains("assertion failed")) {
        return QemuRun::Aborted {
            assertion: a.to_string(),
        };
    }
    match signal {
        Some(6) => QemuRun::Aborted {
            assertion: format!("SIGABRT: {}", tail(stderr)),
        },
        Some(s) => QemuRun::Crashed {
            report: format!("killed by signal {s}: {}", tail(stderr)),
        },
        None => QemuRun::Lost(format!(
            "engine exited with code {}: {}",
            code.map_or("?".into(), |c| c.to_string()),
            tail(stderr)
        )),
    }
}

fn status_parts(s: Option<ExitStatus>) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match s {
        Some(s) => (s.signal(), s.code()),
        None => (None, None),
    }
}

/// A memory image of a heap: its live allocations as objects.
struct Image {
    objects: Vec<Object>,
    /// Simulated base of each object.
    sim: Vec<Addr>,
    relocs: Vec<Reloc>,
    opaque_obj: u32,
    opaque_offset: u64,
}

impl Image {
    fn new(d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Result<Image, String> {
        let live: Vec<_> = heap.allocations().filter(|a| !a.freed).collect();
        let root = heap
            .allocation_at(opaque)
            .filter(|a| !a.freed)
            .ok_or_else(|| format!("opaque {opaque:#x} is not inside a live allocation"))?;
        // The root object first, then the rest in address order.
        let mut order: Vec<_> = vec![root];
        order.extend(live.into_iter().filter(|a| a.base != root.base));
        let mut bases = BTreeMap::new();
        for (i, a) in order.iter().enumerate() {
            bases.insert(a.base, (i as u32, a.size()));
        }
        let mut relocs = Vec::new();
        for (&at, slot) in &crate::leak::reach(d, vmsd, heap, opaque).slots {
            if slot.value == 0 {
                continue;
            }
            let (Some((obj, offset)), Some((target, target_offset))) = (
                protocol::locate(&bases, at),
                protocol::locate(&bases, slot.value),
            ) else {
                continue;
            };
            if offset + 8 <= order[obj as usize].size() {
                relocs.push(Reloc {
                    obj,
                    offset,
                    target,
                    target_offset,
                });
            }
        }
        Ok(Image {
            objects: order
                .iter()
                .map(|a| Object {
                    bytes: a.bytes.to_vec(),
                })
                .collect(),
            sim: order.iter().map(|a| a.base).collect(),
            relocs,
            opaque_obj: 0,
            opaque_offset: opaque - root.base,
        })
    }

    fn request<'a>(&self, vmsd: &'a Vmsd, load: Option<(i32, &'a [u8])>) -> Vec<u8> {
        protocol::encode_request(&Request {
            vmsd,
            objects: self.objects.clone(),
            relocs: self.relocs.clone(),
            opaque_obj: self.opaque_obj,
            opaque_offset: self.opaque_offset,
            load,
        })
    }
}

/// Applies a LOAD's resulting heap to `heap` (see the module comment).
fn apply_heap(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &mut Heap,
    image: &Image,
    reply: &Reply,
) -> Result<(), String> {
    // 1. The whole result at real addresses.
    let mut real = Heap::new(HeapLimits {
        max_live_bytes: u64::MAX,
    });
    let mut real_base = vec![None; image.objects.len()];
    for o in &reply.objects {
        match o {
            HeapObject::Prepared {
                index,
                addr,
                freed,
                bytes,
            } => {
                let i = *index as usize;
                if i >= real_base.len() {
                    return Err(format!("reply names prepared object {i}"));
                }
                real_base[i] = Some(*addr);
                if !freed {
                    real.place(*addr, bytes.clone(), Origin::Prepared)
                        .map_err(|e| format!("placing prepared object {i}: {e}"))?;
                }
            }
            HeapObject::Allocated {
                kind, addr, bytes, ..
            } => {
                let origin = Origin::Load {
                    path: "?".into(),
                    allocator: kind.allocator().expect("an allocator"),
                };
                real.place(*addr, bytes.clone(), origin)
                    .map_err(|e| format!("placing allocation at {addr:#x}: {e}"))?;
            }
        }
    }
    // 2. Declared pointers into prepared objects go back to simulated addresses.
    let mut prepared = BTreeMap::new();
    for (i, b) in real_base.iter().enumerate() {
        if let Some(b) = b {
            prepared.insert(*b, (i as u32, image.objects[i].bytes.len() as u64));
        }
    }
    let root_freed = reply.objects.iter().any(|o| {
        matches!(
            o,
            HeapObject::Prepared {
                index: 0,
                freed: true,
                ..
            }
        )
    });
    if let (Some(root), false) = (real_base[0], root_freed) {
        let opaque = root + image.opaque_offset;
        for (&at, slot) in &crate::leak::reach(d, vmsd, &real, opaque).slots {
            // A freed prepared object's address may have been reused by a
            // live allocation of the op: the live one wins.
            let reused = real
                .allocation_at(slot.value)
                .is_some_and(|a| matches!(a.origin, Origin::Load { .. }));
            if reused {
                continue;
            }
            if let Some((i, off)) = protocol::locate(&prepared, slot.value) {
                real.write_ptr(at, image.sim[i as usize] + off)
                    .map_err(|e| format!("translating the pointer at {at:#x}: {e}"))?;
            }
        }
    }
    // 3. Into the caller's heap.
    for o in &reply.objects {
        match o {
            HeapObject::Prepared {
                index, addr, freed, ..
            } => {
                let sim = image.sim[*index as usize];
                if *freed {
                    let _ = heap.free(sim);
                } else {
                    let len = image.objects[*index as usize].bytes.len() as u64;
                    let bytes = real.read(*addr, len).map_err(|e| e.to_string())?.to_vec();
                    heap.write(sim, &bytes).map_err(|e| e.to_string())?;
                }
            }
            HeapObject::Allocated { kind, addr, .. } => {
                let a = real.allocation_at(*addr).expect("placed above");
                let origin = Origin::Load {
                    path: "?".into(),
                    allocator: kind.allocator().expect("an allocator"),
                };
                heap.place(*addr, a.bytes, origin)
                    .map_err(|e| format!("placing allocation at {addr:#x}: {e}"))?;
            }
        }
    }
    Ok(())
}

impl QemuEngine {
    /// Starts the engine executable (as printed by build.sh) and reads its HELLO.
    pub fn spawn(path: &Path) -> io::Result<QemuEngine> {
        let timeout = Duration::from_secs(10);
        let (proc, hello) = Proc::start(path, timeout)?;
        let dialect = dialect_of(&hello.dialect).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("engine dialect {} has no reference dialect", hello.dialect),
            )
        })?;
        Ok(QemuEngine {
            path: path.to_path_buf(),
            hello,
            dialect,
            timeout,
            inner: Mutex::new(Inner {
                proc: Some(proc),
                last: LastRun::default(),
            }),
        })
    }

    /// The per-request timeout (10 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> QemuEngine {
        self.timeout = timeout;
        self
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The QEMU version the engine was built from.
    pub fn version(&self) -> &str {
        &self.hello.qemu_version
    }

    /// Whether the engine was built with ASan/UBSan.
    pub fn sanitized(&self) -> bool {
        self.hello.flags & 1 != 0
    }

    /// Events, LeakSanitizer verdict and stderr of the last request.
    pub fn last_run(&self) -> LastRun {
        self.inner.lock().unwrap().last.clone()
    }

    /// The allocator calls of the last request.
    pub fn last_events(&self) -> Vec<Event> {
        self.last_run().events
    }

    /// Sends one request; a dead or hung engine is reaped and respawned on
    /// the next call.
    fn run(&self, payload: &[u8]) -> Result<Reply, QemuRun<()>> {
        let mut inner = self.inner.lock().unwrap();
        inner.last = LastRun::default();
        if inner.proc.is_none() {
            match Proc::start(&self.path, self.timeout) {
                Ok((p, _)) => inner.proc = Some(p),
                Err(e) => return Err(QemuRun::Lost(format!("respawn failed: {e}"))),
            }
        }
        let proc = inner.proc.as_mut().expect("started");
        proc.stderr.lock().unwrap().clear();
        let sent = proc
            .stdin
            .write_all(&(payload.len() as u32).to_le_bytes())
            .and_then(|_| proc.stdin.write_all(payload))
            .and_then(|_| proc.stdin.flush());
        let got = match sent {
            Ok(()) => proc.frames.recv_timeout(self.timeout),
            Err(e) => Ok(Err(e)),
        };
        match got {
            Ok(Ok(frame)) => {
                inner.last.stderr = proc.stderr_text();
                match protocol::decode_reply(&frame) {
                    Ok(Ok(reply)) => {
                        inner.last.events = reply.events.clone();
                        inner.last.lsan = Some(reply.lsan.clone());
                        Ok(reply)
                    }
                    Ok(Err(refused)) => Err(QemuRun::Lost(format!(
                        "engine refused the request: {refused}"
                    ))),
                    Err(bad) => {
                        let p = inner.proc.take().expect("running");
                        p.finish(true);
                        Err(QemuRun::Lost(format!("bad reply: {bad}")))
                    }
                }
            }
            Ok(Err(_)) => {
                // EOF: the engine died during the request.
                let p = inner.proc.take().expect("running");
                let (status, text) = p.finish(false);
                inner.last.stderr = text.clone();
                let (signal, code) = status_parts(status);
                Err(classify_death(signal, code, &text))
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                let p = inner.proc.take().expect("running");
                let (_, text) = p.finish(true);
                inner.last.stderr = text.clone();
                Err(QemuRun::Lost(format!(
                    "no reply within {:?}: {}",
                    self.timeout,
                    tail(&text)
                )))
            }
        }
    }

    /// `vmstate_save_state(f, vmsd, opaque, NULL[, errp])` in QEMU.
    pub fn save(&self, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> QemuRun<Vec<u8>> {
        let image = match Image::new(self.dialect, vmsd, heap, opaque) {
            Ok(i) => i,
            Err(e) => return QemuRun::Lost(e),
        };
        match self.run(&image.request(vmsd, None)) {
            Err(e) => e.cast(),
            Ok(r) if r.ret != 0 => QemuRun::Failed {
                ret: r.ret,
                message: r.message,
            },
            Ok(r) if r.file_error != 0 => QemuRun::Failed {
                ret: r.file_error,
                message: format!("qemu_file_get_error: {}", r.file_error),
            },
            Ok(r) => QemuRun::Ok(r.output),
        }
    }

    /// `vmstate_load_state(f, vmsd, opaque, version, ...)` then
    /// `qemu_file_get_error(f)` in QEMU; returns the bytes consumed. The
    /// heap is updated whatever the result, as QEMU leaves it.
    pub fn load(
        &self,
        vmsd: &Vmsd,
        heap: &mut Heap,
        opaque: Addr,
        version: i32,
        stream: &[u8],
    ) -> QemuRun<usize> {
        let image = match Image::new(self.dialect, vmsd, heap, opaque) {
            Ok(i) => i,
            Err(e) => return QemuRun::Lost(e),
        };
        let reply = match self.run(&image.request(vmsd, Some((version, stream)))) {
            Ok(r) => r,
            Err(e) => return e.cast(),
        };
        if let Err(e) = apply_heap(self.dialect, vmsd, heap, &image, &reply) {
            return QemuRun::Lost(format!("rebuilding the heap: {e}"));
        }
        if reply.ret != 0 {
            QemuRun::Failed {
                ret: reply.ret,
                message: reply.message,
            }
        } else if reply.file_error != 0 {
            QemuRun::Failed {
                ret: reply.file_error,
                message: format!("qemu_file_get_error: {}", reply.file_error),
            }
        } else {
            QemuRun::Ok(reply.consumed.unwrap_or(stream.len() as u64) as usize)
        }
    }
}

impl Engine for QemuEngine {
    fn name(&self) -> String {
        let asan = if self.sanitized() { " asan" } else { "" };
        format!("qemu {}{asan}", self.version())
    }
    fn dialects(&self) -> Vec<Dialect> {
        vec![self.dialect]
    }
    fn check(&self, _: Dialect, _: &Vmsd) -> Option<Result<(), vmstate_reference::Error>> {
        None // vmstate_check is static in migration/savevm.c
    }
    fn save(&self, d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Run<Vec<u8>> {
        if d != self.dialect {
            return Err(Failed::Lost(format!(
                "{} runs {}, not {d}",
                self.name(),
                self.dialect
            )));
        }
        QemuEngine::save(self, vmsd, heap, opaque).into_run()
    }
    fn load(
        &self,
        d: Dialect,
        vmsd: &Vmsd,
        heap: &mut Heap,
        opaque: Addr,
        version: i32,
        stream: &[u8],
    ) -> Run<usize> {
        if d != self.dialect {
            return Err(Failed::Lost(format!(
                "{} runs {}, not {d}",
                self.name(),
                self.dialect
            )));
        }
        QemuEngine::load(self, vmsd, heap, opaque, version, stream).into_run()
    }
}

impl<T> QemuRun<T> {
    /// The engine-neutral form of this result.
    pub fn into_run(self) -> Run<T> {
        match self {
            QemuRun::Ok(v) => Ok(v),
            QemuRun::Failed { ret, message } => Err(Failed::Qemu { ret, message }),
            QemuRun::Aborted { assertion } => Err(Failed::Aborted { assertion }),
            QemuRun::Crashed { report } => Err(Failed::Crashed { report }),
            QemuRun::Lost(why) => Err(Failed::Lost(why)),
        }
    }
}

impl Drop for QemuEngine {
    fn drop(&mut self) {
        if let Some(p) = self.inner.get_mut().ok().and_then(|i| i.proc.take()) {
            p.finish(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_names() {
        assert_eq!(dialect_of("qemu-10.x"), Some(Dialect::Qemu10));
        assert_eq!(dialect_of("qemu-master"), Some(Dialect::QemuMaster));
        assert_eq!(dialect_of("qemu-11.1"), Some(Dialect::Qemu11_1));
        assert_eq!(dialect_of("qemu-9"), None);
    }

    #[test]
    fn deaths_are_classified() {
        let a: QemuRun<()> = classify_death(
            Some(6),
            None,
            "vmstate-engine: ../migration/vmstate.c:429: vmstate_save_vmsd_v: Assertion `field->flags == VMS_END' failed.\n",
        );
        assert!(matches!(a, QemuRun::Aborted { ref assertion } if assertion.contains("VMS_END")));
        let asan = "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6\n\
                    READ of size 4\n    #0 0x55 in __interceptor_memcpy (libasan.so.8+0x1)\n    \
                    #1 0x56 in qemu_get_buffer ../migration/qemu-file.c:600\n\
                    SUMMARY: AddressSanitizer: heap-buffer-overflow ../migration/qemu-file.c:600 in qemu_get_buffer\n";
        match classify_death::<()>(None, Some(1), asan) {
            QemuRun::Crashed { report } => {
                assert!(report.starts_with("SUMMARY: AddressSanitizer: heap-buffer-overflow"));
                assert!(report.contains("#1 0x56 in qemu_get_buffer"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_death::<()>(Some(11), None, ""),
            QemuRun::Crashed { .. }
        ));
        assert!(matches!(
            classify_death::<()>(None, Some(2), "vmstate-engine: bad\n"),
            QemuRun::Lost(_)
        ));
        assert!(matches!(
            classify_death::<()>(
                Some(6),
                None,
                "vmstate-engine: g_malloc: failed to allocate 99 bytes (GLib aborts)\n"
            ),
            QemuRun::Aborted { .. }
        ));
    }
}
