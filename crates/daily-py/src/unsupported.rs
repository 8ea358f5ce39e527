//! `CallClient` calls whose features our rooms do not offer: live streaming, transcription,
//! telephony (dial-out, DTMF, SIP) and proxies. (Recording is offered: `recording.rs`.)
//!
//! Each exists with daily-python 0.36's exact signature so programs written for it (pipecat's
//! `DailyTransport` calls most of them) run unchanged. Each completes exactly once, at once,
//! through the client's dispatcher (never on the caller's stack, always after the call has
//! returned), with an error string naming the missing feature, whether or not the client is in
//! a call. Like every other method they raise `RuntimeError` after `release()`.

use crate::client::CallClient;
use crate::dispatch::{Pending, call_reporting, done_one};
use crate::errors::{Callback, cb, guard};
use pyo3::prelude::*;

const LIVE_STREAMING: &str = "live streaming is not supported by this room server";
const TRANSCRIPTION: &str = "transcription is not supported by this room server";
const DIALOUT: &str = "dial-out is not supported by this room server";
const DTMF: &str = "DTMF is not supported by this room server";
const SIP: &str = "SIP is not supported by this room server";
const PROXY: &str = "proxies are not supported by this SDK";

impl CallClient {
    /// Completes a one-argument completion with `error` (None = success). Raises
    /// `RuntimeError` after `release()`.
    pub(crate) fn complete_one(&self, completion: Option<Callback>, error: Option<&'static str>) -> PyResult<()> {
        self.core()?;
        let done = done_one(self.dispatcher.clone(), cb(completion));
        done(match error {
            None => Ok(()),
            Some(e) => Err(daily_client::ClientError::Unsupported(e.to_owned())),
        });
        Ok(())
    }

    /// Completes a two-argument completion `(None, error)`. Raises `RuntimeError` after
    /// `release()`.
    fn complete_two(&self, completion: Option<Callback>, error: &'static str) -> PyResult<()> {
        self.core()?;
        Pending::new(self.dispatcher.clone(), cb(completion), true).fire(move |py, cb| call_reporting(py, cb, (py.None(), error)));
        Ok(())
    }
}

// Parameters kept only for signature compatibility are read with `let _ = ...`.
#[pymethods]
impl CallClient {
    // --- live streaming ----------------------------------------------------------------------

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (endpoints, streaming_settings=None, stream_id=None, force_new=None, completion=None))]
    fn start_live_stream_with_endpoints(
        &self,
        endpoints: &Bound<'_, PyAny>,
        streaming_settings: Option<&Bound<'_, PyAny>>,
        stream_id: Option<&str>,
        force_new: Option<bool>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        guard(|| {
            let _ = (endpoints, streaming_settings, stream_id, force_new);
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (rtmp_urls, streaming_settings=None, stream_id=None, force_new=None, completion=None))]
    fn start_live_stream_with_rtmp_urls(
        &self,
        rtmp_urls: &Bound<'_, PyAny>,
        streaming_settings: Option<&Bound<'_, PyAny>>,
        stream_id: Option<&str>,
        force_new: Option<bool>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        guard(|| {
            let _ = (rtmp_urls, streaming_settings, stream_id, force_new);
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (stream_id=None, completion=None))]
    fn stop_live_stream(&self, stream_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = stream_id;
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (update_settings, stream_id=None, completion=None))]
    fn update_live_stream(&self, update_settings: &Bound<'_, PyAny>, stream_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = (update_settings, stream_id);
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (endpoints, stream_id=None, completion=None))]
    fn add_live_streaming_endpoints(&self, endpoints: &Bound<'_, PyAny>, stream_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = (endpoints, stream_id);
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    /// Not supported: `completion("live streaming is not supported by this room server")`.
    #[pyo3(signature = (endpoints, stream_id=None, completion=None))]
    fn remove_live_streaming_endpoints(&self, endpoints: &Bound<'_, PyAny>, stream_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = (endpoints, stream_id);
            self.complete_one(completion, Some(LIVE_STREAMING))
        })
    }

    // --- transcription -----------------------------------------------------------------------

    /// Not supported: `completion("transcription is not supported by this room server")`.
    #[pyo3(signature = (settings=None, completion=None))]
    fn start_transcription(&self, settings: Option<&Bound<'_, PyAny>>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = settings;
            self.complete_one(completion, Some(TRANSCRIPTION))
        })
    }

    /// Not supported: `completion("transcription is not supported by this room server")`.
    /// (daily-python 0.36 takes no `instance_id` here.)
    #[pyo3(signature = (completion=None))]
    fn stop_transcription(&self, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            self.complete_one(completion, Some(TRANSCRIPTION))
        })
    }

    /// Not supported: `completion("transcription is not supported by this room server")`.
    #[pyo3(signature = (participants=None, instance_id=None, completion=None))]
    fn update_transcription(&self, participants: Option<&Bound<'_, PyAny>>, instance_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = (participants, instance_id);
            self.complete_one(completion, Some(TRANSCRIPTION))
        })
    }

    // --- telephony ---------------------------------------------------------------------------

    /// Not supported: `completion(None, "dial-out is not supported by this room server")`.
    #[pyo3(signature = (settings, completion=None))]
    fn start_dialout(&self, settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = settings;
            self.complete_two(completion, DIALOUT)
        })
    }

    /// Not supported: `completion("dial-out is not supported by this room server")`.
    #[pyo3(signature = (participant_id, completion=None))]
    fn stop_dialout(&self, participant_id: &str, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = participant_id;
            self.complete_one(completion, Some(DIALOUT))
        })
    }

    /// Not supported: `completion("DTMF is not supported by this room server")`.
    #[pyo3(signature = (settings, completion=None))]
    fn send_dtmf(&self, settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = settings;
            self.complete_one(completion, Some(DTMF))
        })
    }

    /// Not supported: `completion("SIP is not supported by this room server")`.
    #[pyo3(signature = (settings, completion=None))]
    fn sip_call_transfer(&self, settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = settings;
            self.complete_one(completion, Some(SIP))
        })
    }

    /// Not supported: `completion("SIP is not supported by this room server")`.
    #[pyo3(signature = (settings, completion=None))]
    fn sip_refer(&self, settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = settings;
            self.complete_one(completion, Some(SIP))
        })
    }

    // --- chat and proxies --------------------------------------------------------------------

    /// `proxy_url=None` (no proxy, which is what this SDK does) completes with `None`; a URL
    /// completes with `"proxies are not supported by this SDK"`.
    #[pyo3(signature = (proxy_url=None, completion=None))]
    fn set_proxy_url(&self, proxy_url: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            self.complete_one(completion, proxy_url.map(|_| PROXY))
        })
    }
}
