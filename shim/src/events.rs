//! The task events the shim publishes to containerd (`/tasks/exit` and the
//! others), over containerd's ttrpc event service.
//!
//! Not through the crate's `RemotePublisher::publish`: it names each event's
//! type by protobuf reflection (`descriptor_dyn().full_name()`), and the
//! first such call builds the descriptors of every message of the protocol:
//! 0.8 ms of CPU on the path of the first Create, and about 1.7 MiB more
//! resident in every shim, for a name that is a constant. The names here
//! are constants, checked against reflection by the unit test below.

use shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use shim::protos::protobuf::{well_known_types::any::Any, Message};
use shim::protos::shim::events::{Envelope, ForwardRequest};
use shim::protos::{ttrpc, EventsClient};

use containerd_shim as shim;

/// A task event: its topic, and its protobuf type's full name (the `Any`
/// type URL containerd decodes it by).
pub trait Event: Message {
    const TOPIC: &'static str;
    const TYPE: &'static str;
}

macro_rules! events {
    ($($event:ident $topic:literal),* $(,)?) => {
        $(impl Event for $event {
            const TOPIC: &'static str = $topic;
            const TYPE: &'static str = concat!("containerd.events.", stringify!($event));
        })*
    };
}

events! {
    TaskCreate "/tasks/create",
    TaskStart "/tasks/start",
    TaskDelete "/tasks/delete",
    TaskExit "/tasks/exit",
    TaskOOM "/tasks/oom",
    TaskExecAdded "/tasks/exec-added",
    TaskExecStarted "/tasks/exec-started",
    TaskPaused "/tasks/paused",
    TaskResumed "/tasks/resumed",
}

/// containerd's event service, with the shim's namespace.
pub struct Publisher {
    client: EventsClient,
    namespace: String,
}

impl Publisher {
    /// Connects to containerd's ttrpc `address` (`TTRPC_ADDRESS`, which
    /// containerd sets for every shim command).
    pub fn connect(address: &str, namespace: String) -> Result<Publisher, String> {
        let fd = shim::util::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        // ttrpc's client takes the descriptor over (and closes it).
        let client = ttrpc::Client::new(fd).map_err(|e| format!("ttrpc client: {e}"))?;
        Ok(Publisher {
            client: EventsClient::new(client),
            namespace,
        })
    }

    /// Publishes `event`; a failure is logged (containerd may be
    /// restarting), not returned.
    pub fn publish<E: Event>(&self, event: E) {
        if let Err(e) = self.forward(&event) {
            log::warn!("publish {}: {e}", E::TOPIC);
        }
    }

    fn forward<E: Event>(&self, event: &E) -> Result<(), String> {
        let value = event.write_to_bytes().map_err(|e| e.to_string())?;
        let envelope = Envelope {
            timestamp: Some(shim::util::timestamp().map_err(|e| e.to_string())?).into(),
            namespace: self.namespace.clone(),
            topic: E::TOPIC.to_string(),
            event: Some(Any {
                type_url: E::TYPE.to_string(),
                value,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let request = ForwardRequest {
            envelope: Some(envelope).into(),
            ..Default::default()
        };
        self.client
            .forward(shim::Context::default(), &request)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim::protos::protobuf::MessageFull;

    fn check<E: Event + MessageFull + shim::event::Event>() {
        assert_eq!(E::TYPE, E::descriptor().full_name());
        // The topics are the crate's, which its `Event` trait names.
        let topic = shim::event::Event::topic(&E::default());
        assert_eq!(E::TOPIC, topic);
    }

    #[test]
    fn names_are_those_reflection_gives() {
        check::<TaskCreate>();
        check::<TaskStart>();
        check::<TaskDelete>();
        check::<TaskExit>();
        check::<TaskOOM>();
        check::<TaskExecAdded>();
        check::<TaskExecStarted>();
        check::<TaskPaused>();
        check::<TaskResumed>();
    }
}
