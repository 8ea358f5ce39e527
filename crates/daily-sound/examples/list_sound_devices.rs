//! Prints the machine's sound devices as `daily_sound::list_devices` sees them:
//! `cargo run -p daily-sound --example list_sound_devices`.

fn main() -> Result<(), daily_sound::SoundError> {
    for d in daily_sound::list_devices()? {
        let default = if d.is_default { " (default)" } else { "" };
        println!(
            "{:<6} {}{default}: {:?} Hz, {:?} channels; rates {:?}, channel counts {:?}",
            d.direction.as_str(),
            d.name,
            d.default_sample_rate,
            d.default_channels,
            d.sample_rate_range,
            d.channel_counts
        );
    }
    Ok(())
}
