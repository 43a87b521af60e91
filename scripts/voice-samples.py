#!/usr/bin/env python3
"""Regenerates the spoken digits of the audio CAPTCHA (src/captcha/voice/):
0-9 in Japanese and in English, each spoken by espeak-ng (Debian's
`espeak-ng`, installed here if missing), cut to the speech, brought down
from espeak-ng's 22,050 Hz to 8,000 Hz mono, peak at 0.9 of full scale,
and written as 8-bit WAV files of a few KB each (kagi reads them with
include_bytes!). Not run by the tests: the files are committed, and this
script is only for changing them (another voice, another reading).

Only the standard library: the resampling is a windowed-sinc low-pass at
3.6 kHz, below the 4 kHz that 8,000 samples a second can carry.

Usage: python3 scripts/voice-samples.py [OUT_DIR]   (default src/captcha/voice)"""

import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

# What espeak-ng reads for each digit. Japanese as digits are read aloud
# one by one (a telephone number): 0 ゼロ, 4 よん, 7 なな, and the short
# に and ご drawn out (にー, ごー), so that no digit is a single short mora.
READINGS = {
    "ja": ("ja", ["ゼロ", "いち", "にー", "さん", "よん", "ごー", "ろく", "なな", "はち", "きゅう"]),
    "en": ("en-us", ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]),
}

RATE = 8000
# espeak-ng's words a minute: a little slower than its 175, for clarity.
SPEED = "160"
PEAK = 0.9
# Speech starts and ends where it first and last reaches this share of its
# peak (-34 dB); a few milliseconds around that are kept and faded.
THRESHOLD = 0.02
MARGIN_SECS = 0.015
FADE_SECS = 0.005


def ensure_espeak():
    if shutil.which("espeak-ng"):
        return
    print("voice-samples: installing espeak-ng", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], check=True)


def speak(voice, text, path):
    """espeak-ng's reading of `text` as floats in [-1, 1] and its rate."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", SPEED, "-w", path, text], check=True)
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    samples = struct.unpack("<%dh" % (len(frames) // 2), frames)
    return [s / 32768.0 for s in samples], rate


def trim(samples, rate):
    peak = max(abs(s) for s in samples)
    loud = [i for i, s in enumerate(samples) if abs(s) >= THRESHOLD * peak]
    margin = int(MARGIN_SECS * rate)
    return samples[max(0, loud[0] - margin):loud[-1] + margin + 1]


def resample(samples, rate_in, rate_out, cutoff=3600.0, zeros=12):
    """Windowed-sinc (Blackman) resampling with a low-pass at `cutoff` Hz."""
    fc = cutoff / rate_in  # cycles per input sample
    half = int(math.ceil(zeros / (2 * fc)))
    out = []
    count = int(len(samples) * rate_out / rate_in)
    for n in range(count):
        t = n * rate_in / rate_out
        centre = int(math.floor(t))
        acc = 0.0
        for k in range(centre - half + 1, centre + half + 1):
            if 0 <= k < len(samples):
                x = t - k
                sinc = 2 * fc if x == 0 else math.sin(2 * math.pi * fc * x) / (math.pi * x)
                window = 0.42 + 0.5 * math.cos(math.pi * x / half) + 0.08 * math.cos(2 * math.pi * x / half)
                acc += samples[k] * sinc * window
        out.append(acc)
    return out


def finish(samples):
    """Peak at PEAK, faded in and out, as 8-bit unsigned PCM bytes."""
    peak = max(abs(s) for s in samples)
    fade = int(FADE_SECS * RATE)
    out = bytearray()
    for i, s in enumerate(samples):
        gain = PEAK / peak * min(1.0, (i + 1) / fade, (len(samples) - i) / fade)
        out.append(max(0, min(255, 128 + round(s * gain * 127))))
    return bytes(out)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "src/captcha/voice"
    ensure_espeak()
    total = 0
    with tempfile.TemporaryDirectory() as work:
        for name, (voice, words) in READINGS.items():
            os.makedirs(os.path.join(out_dir, name), exist_ok=True)
            for digit, text in enumerate(words):
                samples, rate = speak(voice, text, os.path.join(work, "digit.wav"))
                pcm = finish(resample(trim(samples, rate), rate, RATE))
                path = os.path.join(out_dir, name, "%d.wav" % digit)
                with wave.open(path, "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(1)
                    w.setframerate(RATE)
                    w.writeframes(pcm)
                size = os.path.getsize(path)
                total += size
                print("%s  %-6s %4d ms  %5d bytes" % (path, text, len(pcm) * 1000 // RATE, size))
    print("in all: %d bytes" % total)


if __name__ == "__main__":
    main()
