use super::*;

fn sample(at: Instant, secs: u64) -> Sample {
    Sample {
        at: at + Duration::from_secs(secs),
        epoch_ms: 1_700_000_000_000.0 + secs as f64 * 1000.0,
        sent: BTreeMap::new(),
        received: BTreeMap::new(),
        video_sent: BTreeMap::new(),
        video_received: BTreeMap::new(),
        available_outgoing: None,
        reports: BTreeMap::new(),
        ice_rtt: None,
    }
}

fn report(seq: u32, lost: i64, fraction: u8, rtt: Option<f64>, count: u64) -> RemoteReport {
    RemoteReport { ext_highest_seq: seq, cumulative_lost: lost, fraction_lost: fraction, jitter: 480, rtt, count }
}

#[test]
fn rtt_is_arrival_minus_lsr_minus_dlsr() {
    // LSR = 0x0001_8000 (1.5 s in 1/65536), DLSR = 0.25 s, arrival = 2.0 s: RTT = 0.25 s.
    let arrival: u64 = 2 << 32;
    assert_eq!(rtt_from_report(arrival, 0x0001_8000, 0x0000_4000), Some(0.25));
    // The middle 32 bits wrap every 65536 s: still right across the wrap.
    let arrival: u64 = (0x1_0000u64 << 32) | (1 << 30); // 65536.25 s → middle bits 0x0000_4000
    assert_eq!(rtt_from_report(arrival, 0xFFFF_C000, 0x0000_4000), Some(0.25));
}

#[test]
fn rtt_is_unknown_without_sr_or_when_negative() {
    assert_eq!(rtt_from_report(5 << 32, 0, 0), None);
    // DLSR longer than the time since the SR left: clocks not comparable.
    assert_eq!(rtt_from_report(2 << 32, 0x0001_8000, 0x0001_0000), None);
}

#[test]
fn cumulative_lost_is_24_bit_signed() {
    assert_eq!(cumulative_lost(5), 5);
    assert_eq!(cumulative_lost(0x00FF_FFFF), -1);
    assert_eq!(cumulative_lost(0x007F_FFFF), 0x7F_FFFF);
}

#[test]
fn record_keeps_the_latest_block_and_counts() {
    let mut t = BTreeMap::new();
    let b = ReceptionReport {
        ssrc: 7,
        fraction_lost: 26,
        total_lost: 3,
        last_sequence_number: 100,
        jitter: 96,
        last_sender_report: 0x0001_8000,
        delay: 0x0000_4000,
    };
    record(&mut t, &b, 2 << 32);
    record(&mut t, &ReceptionReport { last_sequence_number: 150, ..b }, 2 << 32);
    let r = t[&7];
    assert_eq!((r.ext_highest_seq, r.cumulative_lost, r.fraction_lost, r.count), (150, 3, 26, 2));
    assert_eq!(r.rtt, Some(0.25));
}

#[test]
fn bit_rates_are_byte_deltas_over_elapsed_time() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    let mut b = sample(t0, 2);
    a.sent.insert(1, SentCounters { bytes: 1_000 });
    b.sent.insert(1, SentCounters { bytes: 9_000 }); // 8000 B in 2 s = 32 kbit/s
    b.sent.insert(2, SentCounters { bytes: 500 }); // new stream: counts from 0
    a.received.insert(9, ReceivedCounters { bytes: 100, packets: 1, lost: 0, jitter: 0.0 });
    b.received.insert(9, ReceivedCounters { bytes: 10_100, packets: 101, lost: 0, jitter: 0.002 });
    let i = interval(&a, &b);
    assert_eq!(i.audio.send_bps, (8_000.0 + 500.0) * 8.0 / 2.0);
    assert_eq!(i.audio.recv_bps, 40_000.0);
    assert_eq!(i.audio.recv_loss, Some(0.0));
    assert_eq!(i.audio.recv_jitter, Some(0.002));
    assert_eq!(i.timestamp_ms, b.epoch_ms);
}

#[test]
fn a_stream_that_went_away_or_a_zero_interval_gives_no_negative_rate() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    a.sent.insert(1, SentCounters { bytes: 1_000 });
    let b = sample(t0, 2);
    assert_eq!(interval(&a, &b).audio.send_bps, 0.0);
    let same = sample(t0, 0);
    assert_eq!(interval(&same, &same).audio.send_bps, 0.0);
}

#[test]
fn send_loss_comes_from_report_deltas() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    let mut b = sample(t0, 2);
    for s in [&mut a, &mut b] {
        s.sent.insert(1, SentCounters { bytes: 0 });
    }
    a.reports.insert(1, report(1_000, 10, 0, Some(0.04), 3));
    b.reports.insert(1, report(1_100, 15, 13, Some(0.06), 5)); // 5 of 100 lost
    let i = interval(&a, &b);
    assert_eq!(i.audio.send_loss, Some(0.05));
    assert_eq!(i.rtt, Some(0.06));
    assert_eq!(i.audio.send_jitter, Some(0.01)); // 480 / 48000
}

#[test]
fn without_a_fresh_report_the_fraction_lost_stands_in() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    let mut b = sample(t0, 2);
    for s in [&mut a, &mut b] {
        s.sent.insert(1, SentCounters { bytes: 0 });
        s.reports.insert(1, report(1_000, 10, 64, None, 3));
    }
    assert_eq!(interval(&a, &b).audio.send_loss, Some(0.25));
    // First report in `b` only.
    a.reports.clear();
    assert_eq!(interval(&a, &b).audio.send_loss, Some(0.25));
}

#[test]
fn no_reports_means_unknown_send_loss_and_rtt_falls_back_to_ice() {
    let t0 = Instant::now();
    let a = sample(t0, 0);
    let mut b = sample(t0, 2);
    b.ice_rtt = Some(0.003);
    // A report about a stream we no longer send is ignored.
    b.reports.insert(4, report(10, 0, 0, Some(0.5), 1));
    let i = interval(&a, &b);
    assert_eq!(i.audio.send_loss, None);
    assert_eq!(i.rtt, Some(0.003));
    assert_eq!(i.audio.recv_loss, None);
    // Once a report about a sent stream exists, RTCP alone gives the RTT.
    b.sent.insert(4, SentCounters { bytes: 0 });
    assert_eq!(interval(&a, &b).rtt, Some(0.5));
    b.reports.insert(4, report(10, 0, 0, None, 1));
    assert_eq!(interval(&a, &b).rtt, None);
}

#[test]
fn duplicates_never_make_loss_negative() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    let mut b = sample(t0, 2);
    for s in [&mut a, &mut b] {
        s.sent.insert(1, SentCounters { bytes: 0 });
    }
    a.reports.insert(1, report(100, 5, 0, None, 1));
    b.reports.insert(1, report(200, 3, 0, None, 2));
    assert_eq!(interval(&a, &b).audio.send_loss, Some(0.0));
    a.received.insert(2, ReceivedCounters { bytes: 0, packets: 10, lost: 4, jitter: 0.0 });
    b.received.insert(2, ReceivedCounters { bytes: 0, packets: 110, lost: 2, jitter: 0.0 });
    assert_eq!(interval(&a, &b).audio.recv_loss, Some(0.0));
}

#[test]
fn receive_loss_is_lost_over_expected() {
    let t0 = Instant::now();
    let mut a = sample(t0, 0);
    let mut b = sample(t0, 2);
    a.received.insert(2, ReceivedCounters { bytes: 0, packets: 100, lost: 0, jitter: 0.0 });
    b.received.insert(2, ReceivedCounters { bytes: 0, packets: 190, lost: 10, jitter: 0.0 });
    assert_eq!(interval(&a, &b).audio.recv_loss, Some(0.1));
}

#[test]
fn quality_follows_the_documented_breakpoints() {
    assert_eq!(quality(None, None), 100);
    assert_eq!(quality(Some(0.0), Some(0.001)), 100);
    assert_eq!(quality(Some(0.03), None), 70);
    assert_eq!(quality(Some(0.10), None), 40);
    assert_eq!(quality(Some(0.5), None), 0);
    assert_eq!(quality(None, Some(0.4)), 70);
    assert_eq!(quality(None, Some(0.8)), 40);
    assert_eq!(quality(Some(0.015), Some(0.8)), 40); // the worse one wins
    assert_eq!(threshold(100), "good");
    assert_eq!(threshold(71), "good");
    assert_eq!(threshold(70), "low");
    assert_eq!(threshold(41), "low");
    assert_eq!(threshold(40), "veryLow");
    assert_eq!(threshold(0), "veryLow");
}

#[test]
fn first_sample_is_a_baseline_then_each_gives_a_dict() {
    let t0 = Instant::now();
    let mut n = NetStats::default();
    let mut s = sample(t0, 0);
    s.sent.insert(1, SentCounters { bytes: 0 });
    assert!(n.update(s.clone()).is_none());
    s.at += Duration::from_secs(2);
    s.epoch_ms += 2000.0;
    s.sent.insert(1, SentCounters { bytes: 8_000 });
    s.reports.insert(1, report(100, 0, 0, Some(0.02), 1));
    let v = n.update(s).expect("a dict");
    let latest = &v["stats"]["latest"];
    assert_eq!(latest["audioSendBitsPerSecond"], 32_000.0);
    assert_eq!(latest["sendBitsPerSecond"], 32_000.0);
    assert_eq!(latest["networkRoundTripTime"], 0.02);
    assert_eq!(latest["audioSendPacketLoss"], 0.0);
    assert_eq!(latest["audioRecvPacketLoss"], Value::Null);
    assert_eq!(latest["videoSendBitsPerSecond"], 0.0);
    assert_eq!(latest["videoSendPacketLoss"], Value::Null);
    assert_eq!(latest["availableOutgoingBitrate"], Value::Null);
    assert_eq!(v["stats"]["averageNetworkRoundTripTime"], 0.02);
    assert_eq!(v["stats"]["worstAudioSendPacketLoss"], 0.0);
    assert_eq!(v["quality"], 100);
    assert_eq!(v["threshold"], "good");
}

#[test]
fn video_streams_have_their_own_figures_and_count_in_the_totals() {
    let t0 = Instant::now();
    let mut n = NetStats::default();
    let mut s = sample(t0, 0);
    s.sent.insert(1, SentCounters { bytes: 0 });
    s.video_sent.insert(2, SentCounters { bytes: 0 });
    s.video_received.insert(3, ReceivedCounters { bytes: 0, packets: 0, lost: 0, jitter: 0.0 });
    s.reports.insert(2, report(1000, 0, 0, Some(0.01), 1));
    assert!(n.update(s.clone()).is_none());
    s.at += Duration::from_secs(2);
    s.epoch_ms += 2000.0;
    s.sent.insert(1, SentCounters { bytes: 8_000 });
    s.video_sent.insert(2, SentCounters { bytes: 170_000 });
    s.video_received.insert(3, ReceivedCounters { bytes: 100_000, packets: 95, lost: 5, jitter: 0.004 });
    s.reports.insert(2, report(1100, 10, 0, Some(0.01), 2)); // 10 of 100 lost upstream
    s.available_outgoing = Some(1_200_000.0);
    let v = n.update(s).expect("a dict");
    let latest = &v["stats"]["latest"];
    assert_eq!(latest["videoSendBitsPerSecond"], 680_000.0);
    assert_eq!(latest["videoRecvBitsPerSecond"], 400_000.0);
    assert_eq!(latest["sendBitsPerSecond"], 712_000.0);
    assert_eq!(latest["videoSendPacketLoss"], 0.1);
    assert_eq!(latest["videoRecvPacketLoss"], 0.05);
    assert_eq!(latest["totalSendPacketLoss"], 0.1);
    assert_eq!(latest["videoRecvJitter"], 0.004);
    assert_eq!(latest["availableOutgoingBitrate"], 1_200_000.0);
    assert_eq!(v["stats"]["worstVideoSendPacketLoss"], 0.1);
    assert!(v["quality"].as_u64().unwrap() < 100, "video loss lowers the quality");
}

#[test]
fn the_window_keeps_the_worst_and_forgets_after_thirty_seconds() {
    let t0 = Instant::now();
    let mut n = NetStats::default();
    let mut s = sample(t0, 0);
    s.sent.insert(1, SentCounters { bytes: 0 });
    s.reports.insert(1, report(0, 0, 0, Some(0.05), 1));
    n.update(s.clone());
    let mut seq = 0u32;
    let mut lost = 0i64;
    let mut step = |n: &mut NetStats, s: &mut Sample, loss: u32| {
        s.at += SAMPLE_INTERVAL;
        seq += 100;
        lost += loss as i64;
        let count = s.reports.get(&1).map_or(0, |r| r.count) + 1;
        s.reports.insert(1, report(seq, lost, 0, Some(0.05), count));
        n.update(s.clone()).expect("a dict")
    };
    let v = step(&mut n, &mut s, 20); // one bad interval: 20 % loss
    assert_eq!(v["stats"]["worstAudioSendPacketLoss"], 0.2);
    assert_eq!(v["stats"]["latest"]["audioSendPacketLoss"], 0.2);
    assert_eq!(v["threshold"], "veryLow");
    let mut v = v;
    for _ in 0..WINDOW - 1 {
        v = step(&mut n, &mut s, 0);
    }
    // Still in the window: mean loss 0.2 / 15 ≈ 1.3 % → good, worst still 0.2.
    assert_eq!(v["stats"]["worstAudioSendPacketLoss"], 0.2);
    assert_eq!(v["threshold"], "good");
    let v = step(&mut n, &mut s, 0);
    assert_eq!(v["stats"]["worstAudioSendPacketLoss"], 0.0);
    assert_eq!(v["quality"], 100);
}

#[test]
fn connection_status_reports_each_change_once() {
    use webrtc::peer_connection::RTCPeerConnectionState as S;
    let mut last = None;
    let seen: Vec<_> = [S::New, S::Connecting, S::Connected, S::Connected, S::Disconnected, S::Failed, S::Connected, S::Closed]
        .into_iter()
        .filter_map(|s| status_change(&mut last, s))
        .collect();
    assert_eq!(seen, ["connected", "interrupted", "connected"]);
}

#[test]
fn default_matches_daily_python() {
    assert_eq!(default_stats(), json!({"quality": 100, "threshold": "good", "stats": {"latest": {}}}));
}
