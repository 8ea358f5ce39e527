//! What our interceptors around a webrtc-rs one (`pacer.rs`, `resend.rs`) share: the
//! `sansio::Protocol` methods they leave to the interceptor they wrap (`self.inner`).

/// The `Protocol` methods that only forward to `self.inner`: `poll_read`, `poll_write`,
/// `handle_timeout`, `poll_timeout`, `handle_event`, `poll_event` and `close`. Used inside an
/// `impl Protocol<TaggedPacket, TaggedPacket, ()>` whose type has an `inner` field.
macro_rules! delegate_to_inner {
    () => {
        fn poll_read(&mut self) -> Option<TaggedPacket> {
            self.inner.poll_read()
        }

        fn poll_write(&mut self) -> Option<TaggedPacket> {
            self.inner.poll_write()
        }

        fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
            self.inner.handle_timeout(now)
        }

        fn poll_timeout(&mut self) -> Option<Instant> {
            self.inner.poll_timeout()
        }

        fn handle_event(&mut self, evt: ()) -> Result<(), Self::Error> {
            self.inner.handle_event(evt)
        }

        fn poll_event(&mut self) -> Option<()> {
            self.inner.poll_event()
        }

        fn close(&mut self) -> Result<(), Self::Error> {
            self.inner.close()
        }
    };
}

pub(crate) use delegate_to_inner;
