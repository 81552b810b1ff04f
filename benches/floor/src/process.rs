//! The last steps before exec that runc's default config asks for: the rlimit, the
//! capability sets, no_new_privs, and exec by the config's PATH and env.

use std::convert::Infallible;
use std::ffi::CString;

/// `process.env` of the default config.
const ENV: [&str; 2] = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM=xterm",
];
/// `process.capabilities`: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE in the
/// bounding, effective and permitted sets. (The ambient set it also names cannot be
/// raised with an empty inheritable set; runtimes leave it empty, and so does this.)
const KEPT_CAPS: u64 = 1 << 29 | 1 << 5 | 1 << 10;
/// `process.rlimits`: RLIMIT_NOFILE 1024/1024.
const NOFILE: libc::rlim_t = 1024;

/// Applies the process settings and execs `program` (found by PATH if it has no slash).
pub fn limit_and_exec(program: &[&str]) -> Result<Infallible, String> {
    let limit = libc::rlimit {
        rlim_cur: NOFILE,
        rlim_max: NOFILE,
    };
    // SAFETY: setrlimit reads the struct it is given.
    check(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) },
        "setrlimit",
    )?;
    for cap in 0..64 {
        if KEPT_CAPS & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: a prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            // EINVAL past the kernel's last capability: the bounding set is done.
            break;
        }
    }
    // SAFETY: a prctl with integer arguments.
    check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
        "no_new_privs",
    )?;
    set_capabilities(KEPT_CAPS)?;
    // SAFETY: umask has no failure; runtimes give the process 0022 when the config names none.
    unsafe { libc::umask(0o022) };
    exec(program)
}

fn set_capabilities(caps: u64) -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3: two 32-bit words
        pid: 0,
    };
    let word = |shift: u32| Data {
        effective: (caps >> shift) as u32,
        permitted: (caps >> shift) as u32,
        inheritable: 0,
    };
    let data = [word(0), word(32)];
    // SAFETY: capset reads a v3 header and two data words, which is what is passed.
    check(
        unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } as libc::c_int,
        "capset",
    )
}

/// execve of `program` with the config's env; a bare name is looked up in its PATH.
fn exec(program: &[&str]) -> Result<Infallible, String> {
    let cstrings = |words: &[&str]| -> Result<Vec<CString>, String> {
        words
            .iter()
            .map(|w| CString::new(*w).map_err(|_| format!("{w:?} has a NUL byte")))
            .collect()
    };
    let argv = cstrings(program)?;
    let env = cstrings(&ENV)?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let candidates: Vec<String> = if program[0].contains('/') {
        vec![program[0].to_string()]
    } else {
        let path = ENV[0].trim_start_matches("PATH=");
        path.split(':')
            .map(|dir| format!("{dir}/{}", program[0]))
            .collect()
    };
    let mut last = std::io::Error::from_raw_os_error(libc::ENOENT);
    for candidate in candidates {
        let path = CString::new(candidate).map_err(|_| "program has a NUL byte")?;
        // SAFETY: both arrays are NUL-terminated arrays of pointers to live CStrings.
        unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        last = std::io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::ENOENT) {
            break;
        }
    }
    Err(format!("exec {}: {last}", program[0]))
}

pub fn check(ret: libc::c_int, what: &str) -> Result<(), String> {
    if ret == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    }
}
