//! `process.scheduler`, `process.ioPriority` and `linux.personality`: how the
//! kernel schedules and presents the container's process. Applied by the init
//! before it drops capabilities (real-time policies need CAP_SYS_NICE).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error("set scheduler {policy}: {source}")]
    Scheduler {
        policy: String,
        source: std::io::Error,
    },
    #[error("set ioPriority class {class} priority {priority}: {source}")]
    IoPriority {
        class: String,
        priority: i64,
        source: std::io::Error,
    },
    #[error("ioPriority priority {0} is out of range 0-7")]
    IoPriorityRange(i64),
    #[error("set personality {domain}: {source}")]
    Personality {
        domain: String,
        source: std::io::Error,
    },
    #[error("unsupported personality flag {0:?}")]
    PersonalityFlag(String),
}

/// The kernel's `struct sched_attr` (include/uapi/linux/sched/types.h).
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn policy_number(policy: LinuxSchedulerPolicy) -> u32 {
    match policy {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    }
}

fn flag_bit(flag: LinuxSchedulerFlag) -> u64 {
    match flag {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

fn sched_attr(scheduler: &Scheduler) -> SchedAttr {
    SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(*scheduler.policy()),
        flags: scheduler
            .flags()
            .iter()
            .flatten()
            .map(|f| flag_bit(*f))
            .fold(0, |a, b| a | b),
        nice: scheduler.nice().unwrap_or(0),
        priority: scheduler.priority().unwrap_or(0).max(0) as u32,
        runtime: scheduler.runtime().unwrap_or(0),
        deadline: scheduler.deadline().unwrap_or(0),
        period: scheduler.period().unwrap_or(0),
    }
}

pub fn apply_scheduler(scheduler: &Scheduler) -> Result<(), SchedulingError> {
    let attr = sched_attr(scheduler);
    // SAFETY: sched_setattr reads `attr`, whose size field matches the struct passed.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(SchedulingError::Scheduler {
            policy: format!("{:?}", scheduler.policy()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn ioprio_value(priority: &LinuxIOPriority) -> Result<i32, SchedulingError> {
    let class = match priority.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = priority.priority();
    if !(0..=7).contains(&level) {
        return Err(SchedulingError::IoPriorityRange(level));
    }
    Ok((class << 13) | level as i32)
}

pub fn apply_io_priority(priority: &LinuxIOPriority) -> Result<(), SchedulingError> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    let value = ioprio_value(priority)?;
    // SAFETY: ioprio_set on the calling process with plain integers.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(SchedulingError::IoPriority {
            class: format!("{:?}", priority.class()),
            priority: priority.priority(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

pub fn apply_personality(personality: &LinuxPersonality) -> Result<(), SchedulingError> {
    if let Some(flag) = personality.flags().iter().flatten().next() {
        return Err(SchedulingError::PersonalityFlag(flag.clone()));
    }
    let (persona, name) = match personality.domain() {
        LinuxPersonalityDomain::PerLinux => (0x0000, "LINUX"),
        LinuxPersonalityDomain::PerLinux32 => (0x0008, "LINUX32"),
    };
    // SAFETY: personality(2) takes a plain integer persona.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(SchedulingError::Personality {
            domain: name.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_maps_to_sched_attr() {
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_RR","priority":10,"flags":["SCHED_RESET_ON_FORK","SCHED_FLAG_KEEP_PARAMS"]}"#).unwrap();
        let attr = sched_attr(&s);
        assert_eq!((attr.policy, attr.priority, attr.flags), (2, 10, 0x11));
        assert_eq!(attr.size, 48);
    }

    #[test]
    fn io_priority_packs_class_and_level() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":7}"#).unwrap();
        assert_eq!(ioprio_value(&p).unwrap(), (3 << 13) | 7);
        let bad: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":9}"#).unwrap();
        assert!(matches!(
            ioprio_value(&bad),
            Err(SchedulingError::IoPriorityRange(9))
        ));
    }
}
