// AudioWorklet for the call page: while recording, hands the mix of remote audio the page
// plays (mono, float samples at the AudioContext's sample rate) to the page in 4096-frame
// blocks. Loaded from /assets/recorder.js by call.js.
class CallRecorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.recording = false;
    this.block = new Float32Array(4096);
    this.fill = 0;
    this.port.onmessage = (ev) => {
      if (ev.data === 'start') {
        this.recording = true;
        this.fill = 0;
      } else if (ev.data === 'stop') {
        this.recording = false;
        this.port.postMessage({ done: true, tail: this.block.slice(0, this.fill) });
        this.fill = 0;
      }
    };
  }

  process(inputs) {
    if (!this.recording) return true;
    const input = inputs[0];
    // No input connected yet means silence is being played: record it as such.
    const frames = input && input[0] ? input[0].length : 128;
    for (let i = 0; i < frames; i++) {
      let v = 0;
      if (input) for (let c = 0; c < input.length; c++) v += input[c][i];
      this.block[this.fill++] = input && input.length ? v / input.length : 0;
      if (this.fill === this.block.length) {
        this.port.postMessage({ block: this.block });
        this.block = new Float32Array(4096);
        this.fill = 0;
      }
    }
    return true;
  }
}

registerProcessor('call-recorder', CallRecorder);
