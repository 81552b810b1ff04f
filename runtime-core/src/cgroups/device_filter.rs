//! The device cgroup on cgroup v2. v2 has no `devices.allow`: access to
//! device nodes is decided by a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached
//! to the cgroup. The rule list is first reduced the way v1's devices
//! controller applies it (a default and its exceptions), so a config means
//! the same on both versions; the program then checks the exceptions in order.

use super::{CgroupError, DeviceRule};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const ACCESS_MKNOD: u8 = 1;
const ACCESS_READ: u8 = 2;
const ACCESS_WRITE: u8 = 4;
const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;
const TYPE_BLOCK: i32 = 1;
const TYPE_CHAR: i32 = 2;

/// What v1's devices controller holds after a list of rules: a default, and
/// the devices that are the exception to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Policy {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exception {
    pub kind: char,
    /// `None` is `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

fn access_bits(access: &str) -> u8 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'm' => ACCESS_MKNOD,
            'r' => ACCESS_READ,
            'w' => ACCESS_WRITE,
            _ => 0,
        }
    })
}

impl Policy {
    /// Apply `rules` in order as the v1 kernel does: an `a` rule resets the
    /// default and drops every exception; a rule that agrees with the default
    /// takes its access away from the exception for the same device; one that
    /// disagrees adds (or widens) an exception. A cgroup starts allowing all.
    pub fn from_rules(rules: &[DeviceRule]) -> Policy {
        let mut policy = Policy {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            if rule.kind == 'a' {
                policy = Policy {
                    default_allow: rule.allow,
                    exceptions: Vec::new(),
                };
                continue;
            }
            let number = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
            let device = Exception {
                kind: rule.kind,
                major: number(rule.major),
                minor: number(rule.minor),
                access: access_bits(&rule.access),
            };
            let same = policy.exceptions.iter().position(|e| {
                (e.kind, e.major, e.minor) == (device.kind, device.major, device.minor)
            });
            if rule.allow == policy.default_allow {
                if let Some(i) = same {
                    policy.exceptions[i].access &= !device.access;
                    if policy.exceptions[i].access == 0 {
                        policy.exceptions.remove(i);
                    }
                }
            } else if let Some(i) = same {
                policy.exceptions[i].access |= device.access;
            } else if device.access != 0 {
                policy.exceptions.push(device);
            }
        }
        policy
    }

    /// Whether a `kind` device `major:minor` may be used for `access` (v1's
    /// rule: under a deny default one exception must grant every bit asked
    /// for; under an allow default any exception touching one bit refuses).
    #[cfg(test)]
    pub fn allows(&self, kind: char, major: u32, minor: u32, access: &str) -> bool {
        let asked = access_bits(access);
        let matches = |e: &&Exception| {
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .filter(matches)
                .any(|e| e.access & asked != 0)
        } else {
            self.exceptions
                .iter()
                .filter(matches)
                .any(|e| asked & !e.access == 0)
        }
    }

    /// The program's instructions: load the request into r2 (access), r3
    /// (type), r4 (major), r5 (minor); one block per exception that returns
    /// its verdict on a match; the default last.
    pub fn program(&self) -> Vec<Insn> {
        let mut code = vec![
            Insn::load_word(2, 0),
            Insn::mov_reg(3, 2),
            Insn::and(3, 0xffff),
            Insn::shift_right(2, 16),
            Insn::load_word(4, 4),
            Insn::load_word(5, 8),
        ];
        for exception in &self.exceptions {
            let mut block = Vec::new();
            let kind = if exception.kind == 'b' {
                TYPE_BLOCK
            } else {
                TYPE_CHAR
            };
            block.push(Jump::IfNotEqual(3, kind));
            if let Some(major) = exception.major {
                block.push(Jump::IfNotEqual(4, major as i32));
            }
            if let Some(minor) = exception.minor {
                block.push(Jump::IfNotEqual(5, minor as i32));
            }
            // Under deny, the request must ask for nothing outside the
            // exception; under allow, it must ask for something inside it.
            // An exception over all of rwm matches whatever is asked.
            let checks_access = exception.access != ACCESS_ALL;
            let mut access_check = Vec::new();
            if checks_access {
                let mask = if self.default_allow {
                    exception.access
                } else {
                    !exception.access & ACCESS_ALL
                };
                access_check.push(Insn::mov_reg(6, 2));
                access_check.push(Insn::and(6, i32::from(mask)));
            }
            let verdict = [
                Insn::mov_imm(0, i32::from(!self.default_allow)),
                Insn::exit(),
            ];
            // Each jump skips to the end of the block.
            let access_jumps = usize::from(checks_access);
            let tail = access_check.len() + access_jumps + verdict.len();
            let jumps = block.len();
            for (i, jump) in block.into_iter().enumerate() {
                let skip = (jumps - i - 1) + tail;
                code.push(jump.encode(skip));
            }
            code.extend(access_check);
            if checks_access {
                let skip = verdict.len();
                let jump = if self.default_allow {
                    Jump::IfEqual(6, 0)
                } else {
                    Jump::IfNotEqual(6, 0)
                };
                code.push(jump.encode(skip));
            }
            code.extend(verdict);
        }
        code.push(Insn::mov_imm(0, i32::from(self.default_allow)));
        code.push(Insn::exit());
        code
    }
}

/// One eBPF instruction, as the kernel's `struct bpf_insn` lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }
    /// dst = *(u32 *)(r1 + off): r1 holds the `bpf_cgroup_dev_ctx`.
    fn load_word(dst: u8, off: i16) -> Insn {
        Insn::new(0x61, dst, 1, off, 0)
    }
    fn mov_reg(dst: u8, src: u8) -> Insn {
        Insn::new(0xbf, dst, src, 0, 0)
    }
    fn mov_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0xb7, dst, 0, 0, imm)
    }
    fn and(dst: u8, imm: i32) -> Insn {
        Insn::new(0x57, dst, 0, 0, imm)
    }
    fn shift_right(dst: u8, imm: i32) -> Insn {
        Insn::new(0x77, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(0x95, 0, 0, 0, 0)
    }
}

enum Jump {
    IfEqual(u8, i32),
    IfNotEqual(u8, i32),
}

impl Jump {
    fn encode(self, skip: usize) -> Insn {
        let off = i16::try_from(skip).unwrap_or(i16::MAX);
        match self {
            Jump::IfEqual(reg, imm) => Insn::new(0x15, reg, 0, off, imm),
            Jump::IfNotEqual(reg, imm) => Insn::new(0x55, reg, 0, off, imm),
        }
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel takes a
/// shorter attr than its own and reads the rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(command: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialised bpf_attr prefix of the size passed,
    // and every pointer inside it points at memory the caller keeps alive.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(result)
}

/// Load `program` into the kernel; the verifier's log comes with a refusal.
fn load(program: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let license = CString::new("Apache-2.0").unwrap_or_default();
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let result = bpf(BPF_PROG_LOAD, &mut attr).or_else(|_| {
        let mut log = vec![0u8; 1 << 16];
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
        bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            (e, String::from_utf8_lossy(&log[..end]).trim().to_string())
        })
    })?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(result as i32) })
}

/// Attach the program for `rules` to the cgroup v2 directory `dir`. It stays
/// attached (and in force) for as long as the cgroup exists.
pub(super) fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let program = Policy::from_rules(rules).program();
    let fail = |step: &'static str, source: io::Error, log: String| CgroupError::DeviceProgram {
        path: dir.to_path_buf(),
        step,
        source,
        log,
    };
    let prog = load(&program).map_err(|(e, log)| fail("load", e, log))?;
    let cgroup = File::open(dir).map_err(|e| fail("open", e, String::new()))?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| fail("attach", e, String::new()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::rules_for;
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroup;

    fn rules(json: &str) -> Vec<DeviceRule> {
        let config: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        rules_for(&config, &[])
    }

    #[test]
    fn runc_default_rules_deny_all_but_the_standard_nodes() {
        let policy = Policy::from_rules(&rules(r#"[{"allow":false,"access":"rwm"}]"#));
        assert!(!policy.default_allow);
        assert!(policy.allows('c', 1, 3, "rw"), "/dev/null");
        assert!(policy.allows('c', 136, 7, "rw"), "a pty");
        assert!(policy.allows('b', 8, 0, "m"), "mknod of anything");
        assert!(!policy.allows('b', 8, 0, "r"));
        assert!(!policy.allows('c', 1, 11, "r"), "/dev/kmsg");
    }

    #[test]
    fn an_exception_must_grant_every_bit_asked_for() {
        let policy = Policy::from_rules(&rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
        ));
        assert!(policy.allows('c', 1, 11, "r"));
        assert!(!policy.allows('c', 1, 11, "w"));
        assert!(!policy.allows('c', 1, 11, "rw"));
        assert!(
            !policy.allows('b', 1, 11, "r"),
            "a block device with the same numbers"
        );
    }

    #[test]
    fn a_later_deny_takes_access_away_and_allow_all_resets() {
        let deny_then_allow_then_deny = r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},{"allow":false,"type":"c","major":10,"minor":229,"access":"w"}]"#;
        let policy = Policy::from_rules(&rules(deny_then_allow_then_deny));
        assert!(policy.allows('c', 10, 229, "rm"));
        assert!(!policy.allows('c', 10, 229, "w"));

        let allow_all = Policy::from_rules(&rules(
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"b","major":8,"access":"w"}]"#,
        ));
        assert!(allow_all.default_allow);
        assert!(allow_all.allows('b', 8, 0, "r"));
        assert!(!allow_all.allows('b', 8, 1, "rw"));
        assert!(allow_all.allows('c', 8, 1, "w"));
    }

    /// Runs the program the way the kernel would, over the same requests as
    /// `allows`, so the encoding (offsets, masks, verdicts) is checked too.
    fn interpret(program: &[Insn], kind: char, major: u32, minor: u32, access: &str) -> bool {
        let kind = if kind == 'b' { TYPE_BLOCK } else { TYPE_CHAR };
        let ctx = [
            ((access_bits(access) as u64) << 16) | kind as u64,
            u64::from(major),
            u64::from(minor),
        ];
        let mut reg = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let insn = program[pc];
            let (dst, src) = ((insn.regs & 0xf) as usize, (insn.regs >> 4) as usize);
            let imm = insn.imm as i64 as u64;
            pc += 1;
            match insn.code {
                0x61 => reg[dst] = ctx[insn.off as usize / 4],
                0xbf => reg[dst] = reg[src],
                0xb7 => reg[dst] = imm,
                0x57 => reg[dst] &= imm,
                0x77 => reg[dst] >>= imm,
                0x15 if reg[dst] == imm => pc += insn.off as usize,
                0x55 if reg[dst] != imm => pc += insn.off as usize,
                0x15 | 0x55 => {}
                0x95 => return reg[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn the_program_decides_as_the_policy_does() {
        let configs = [
            r#"[{"allow":false,"access":"rwm"}]"#,
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"b","major":8,"access":"w"},{"allow":false,"type":"c","minor":3,"access":"rwm"}]"#,
        ];
        for config in configs {
            let policy = Policy::from_rules(&rules(config));
            let program = policy.program();
            for kind in ['c', 'b'] {
                for (major, minor) in [(1, 3), (1, 11), (8, 0), (8, 1), (136, 4), (10, 229), (5, 3)]
                {
                    for access in ["r", "w", "m", "rw", "rwm", "wm"] {
                        assert_eq!(
                            interpret(&program, kind, major, minor, access),
                            policy.allows(kind, major, minor, access),
                            "{config}: {kind} {major}:{minor} {access}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_kernel_verifier_accepts_the_program() {
        // Loading needs CAP_BPF (or CAP_SYS_ADMIN); skip where the test runs without it.
        let policy = Policy::from_rules(&rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
        ));
        match load(&policy.program()) {
            Ok(_) => {}
            Err((e, _)) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("skipped: no permission to load BPF programs")
            }
            Err((e, log)) => panic!("the verifier refused the program: {e}\n{log}"),
        }
    }
}
