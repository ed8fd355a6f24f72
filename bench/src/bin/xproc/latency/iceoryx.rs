//! Peer: iceoryx2 publish-subscribe, one service per direction.

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use super::PingPong;
use crate::Res;

/// Slices of `len` bytes. The sender copies its payload into a loaned sample and sends
/// it; the receiver copies the received payload out (what a flexshm read does).
pub struct Ice {
    _node: Node<ipc::Service>,
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Ice {
    /// Opens (or creates) both services; side A publishes on `ab`, side B on `ba`.
    pub fn new(tag: &str, len: usize, side_a: bool) -> Res<Ice> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let open = |dir: &str| -> Res<_> {
            let name: ServiceName = format!("flexshm-bench/{tag}/{len}/{dir}")
                .as_str()
                .try_into()?;
            Ok(node
                .service_builder(&name)
                .publish_subscribe::<[u8]>()
                .history_size(0)
                .subscriber_max_buffer_size(1)
                .enable_safe_overflow(true)
                .open_or_create()?)
        };
        let ab = open("ab")?;
        let ba = open("ba")?;
        let (out, inn) = if side_a { (&ab, &ba) } else { (&ba, &ab) };
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(len)
            .create()?;
        let subscriber = inn.subscriber_builder().create()?;
        Ok(Ice {
            _node: node,
            publisher,
            subscriber,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }
}

impl PingPong for Ice {
    fn send(&mut self, i: u64) {
        let n = 8.min(self.src.len());
        self.src[..n].copy_from_slice(&i.to_le_bytes()[..n]);
        let s = self
            .publisher
            .loan_slice_uninit(self.src.len())
            .expect("iceoryx2 loan");
        s.write_from_slice(&self.src).send().expect("iceoryx2 send");
    }

    fn recv(&mut self, i: u64) {
        loop {
            if let Some(s) = self.subscriber.receive().expect("iceoryx2 receive") {
                self.dst.copy_from_slice(s.payload());
                let n = 8.min(self.dst.len());
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&self.dst[..n]);
                if u64::from_le_bytes(b) == i || n < 8 {
                    return;
                }
            }
            std::hint::spin_loop();
        }
    }
}
