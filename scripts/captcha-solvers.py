#!/usr/bin/env python3
"""Two programs try to read kagi's CAPTCHA, as an attacker's would. Each gets
N images drawn by a running lab (`kagi serve` with capture), with the
answers that lab lists at /dev/captcha.json to score them:

- structure: reads what the image file says beyond its pixels, as the
  script that read every SVG did: text chunks, a palette, an answer in the
  bytes; then the pixels' own structure: one ink per character (the SVG
  gave each glyph its colour), characters that stand apart as connected
  components, matched to stroke-count templates learnt from half the
  images with their answers, and scored on the other half.
- tesseract: Tesseract OCR (Debian's tesseract-ocr, installed here if
  missing) on each image, as it is and thresholded, with the alphabet as
  its whitelist; the better of the two is reported.

Prints each solver's success rate; exits 0 (it reports, it does not judge).
`--samples DIR` only saves the images and their answers.

Usage: captcha-solvers.py KAGI [N] [--samples DIR]"""

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from kagitest import SERVE_CONFIG, Browser, serve, stop

ALPHABET = "234567acdefhkmnrtuvwx"
# The lab's CAPTCHA answers may be tried as fast as the script wants.
CONFIG = SERVE_CONFIG + """[rate_limit]
captcha = { burst = 1000000, refill_secs = 1 }
"""


def challenges(addr, n):
    """N (png bytes, answer) pairs, each drawn by kagi for a ① page."""
    out = []
    b = Browser(addr)
    while len(out) < n:
        _, _, page = b.request("GET", "/portal/reset")
        cid = re.search(r'name="captcha_id" value="([0-9a-f]+)"', page).group(1)
        uri = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page).group(1)
        _, _, listing = b.request("GET", "/dev/captcha.json")
        answer = next(c["answer"] for c in json.loads(listing) if c["id"] == cid)
        out.append((base64.b64decode(uri), answer))
    return out


def chunks(png):
    """The PNG's chunks: (type, data)."""
    at, out = 8, []
    while at + 8 <= len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        out.append((png[at + 4:at + 8].decode("latin-1"), png[at + 8:at + 8 + length]))
        at += 12 + length
    return out


def pixels(png):
    """A greyscale (1 to 8 bits) or RGB PNG's pixels as rows of (r, g, b)."""
    parts = chunks(png)
    width, height, depth, colour = struct.unpack(">IIBB", dict(parts)["IHDR"][:10])
    channels = {0: 1, 2: 3}[colour]
    raw = zlib.decompress(b"".join(d for t, d in parts if t == "IDAT"))
    stride = (width * channels * depth + 7) // 8
    bpp = max(1, channels * depth // 8)
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        prev = line
        if depth < 8:
            per, top = 8 // depth, (1 << depth) - 1
            samples = [(line[x // per] >> (8 - depth * (x % per + 1))) & top for x in range(width)]
            rows.append([(s * 255 // top,) * 3 for s in samples])
        else:
            rows.append([tuple(line[x * channels:(x + 1) * channels]) * (3 // channels) for x in range(width)])
    return rows


def components(ink):
    """Connected components (8-neighbour) of the True cells; each a list of (x, y)."""
    height, width = len(ink), len(ink[0])
    seen, out = set(), []
    for y in range(height):
        for x in range(width):
            if ink[y][x] and (x, y) not in seen:
                todo, part = [(x, y)], []
                seen.add((x, y))
                while todo:
                    cx, cy = todo.pop()
                    part.append((cx, cy))
                    for dx in (-1, 0, 1):
                        for dy in (-1, 0, 1):
                            nx, ny = cx + dx, cy + dy
                            if 0 <= nx < width and 0 <= ny < height and ink[ny][nx] and (nx, ny) not in seen:
                                seen.add((nx, ny))
                                todo.append((nx, ny))
                out.append(part)
    return out


def features(part):
    """What a glyph's blob looks like, coarsely: size, shape, holes left open."""
    xs, ys = [p[0] for p in part], [p[1] for p in part]
    w, h = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
    return (round(len(part) / 60), round(w / 8), round(h / 8))


def structure_solver(train, test):
    """Reads the file, then the pixels' structure; returns answers for `test`."""
    # Anything besides pixels? Text chunks, a palette, the answer in the bytes.
    extras = set()
    for png, answer in train + test:
        for kind, data in chunks(png):
            if kind not in ("IHDR", "IDAT", "IEND"):
                extras.add(kind)
        if answer.encode() in png:
            extras.add("answer-in-bytes")
    # One ink per glyph? Count the distinct dark colours of a few images.
    inks = []
    for png, _ in train[:5]:
        rows = pixels(png)
        inks.append(len({p for row in rows for p in row if sum(p) < 3 * 120}))
    # Learn blob features per character where the blobs part cleanly
    # (exactly five big components, left to right), then read the test set.
    table = {}

    def glyph_blobs(png):
        rows = pixels(png)
        ink = [[sum(p) < 3 * 120 for p in row] for row in rows]
        parts = [c for c in components(ink) if len(c) > 80]
        parts.sort(key=lambda c: min(p[0] for p in c))
        return parts

    clean = 0
    for png, answer in train:
        parts = glyph_blobs(png)
        if len(parts) == len(answer):
            clean += 1
            for part, ch in zip(parts, answer):
                table.setdefault(features(part), {}).setdefault(ch, 0)
                table[features(part)][ch] += 1
    guesses = []
    for png, answer in test:
        parts = glyph_blobs(png)
        if len(parts) != len(answer):
            guesses.append("")
            continue
        word = ""
        for part in parts:
            votes = table.get(features(part), {})
            word += max(votes, key=votes.get) if votes else "?"
        guesses.append(word)
    return guesses, {"extras": sorted(extras), "dark_shades_in_5_images": inks,
                     "train_images_that_part_into_5_blobs": f"{clean}/{len(train)}"}


def ensure_tesseract():
    if shutil.which("tesseract"):
        return
    print("captcha-solvers: installing tesseract-ocr", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "tesseract-ocr"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def write_pgm(path, rows, threshold=None):
    height, width = len(rows), len(rows[0])
    with open(path, "wb") as f:
        f.write(f"P5 {width} {height} 255\n".encode())
        for row in rows:
            grey = [sum(p) // 3 for p in row]
            if threshold is not None:
                grey = [0 if g < threshold else 255 for g in grey]
            f.write(bytes(grey))


def tesseract_solver(test, work):
    """Tesseract on each image, plain and thresholded; the better rate's answers."""
    ensure_tesseract()
    results = {}
    for variant, threshold in (("plain", None), ("thresholded", 120)):
        guesses = []
        for n, (png, _) in enumerate(test):
            path = os.path.join(work, f"t{n}.pgm")
            write_pgm(path, pixels(png), threshold)
            out = subprocess.run(["tesseract", path, "stdout", "--psm", "7", "-c",
                                  f"tessedit_char_whitelist={ALPHABET}"],
                                 capture_output=True, text=True).stdout
            guesses.append(re.sub(r"[^0-9a-z]", "", out.lower()))
        results[variant] = guesses
    return results


def rate(guesses, truth):
    right = sum(1 for g, (_, a) in zip(guesses, truth) if g == a)
    return right, len(truth)


def main():
    args = [a for a in sys.argv[1:]]
    samples = None
    if "--samples" in args:
        i = args.index("--samples")
        samples = args[i + 1]
        del args[i:i + 2]
    kagi = args[0]
    n = int(args[1]) if len(args) > 1 else 500
    work = tempfile.mkdtemp(prefix="kagi-captcha-")
    try:
        config = os.path.join(work, "kagi.toml")
        with open(config, "w") as f:
            f.write(CONFIG.replace("@DATA@", os.path.join(work, "db")))
        proc, addr = serve(kagi, config)
        try:
            # Each solver gets N images to read; the structure solver learns
            # from N more, with their answers.
            drawn = challenges(addr, 2 * n if samples is None else n)
        finally:
            stop(proc)
        if samples is not None:
            os.makedirs(samples, exist_ok=True)
            for i, (png, answer) in enumerate(drawn):
                with open(os.path.join(samples, f"{i:03d}-{answer}.png"), "wb") as f:
                    f.write(png)
            print(f"captcha-solvers: {len(drawn)} images in {samples}")
            return
        train, test = drawn[:n], drawn[n:]
        sizes = sorted(len(p) for p, _ in test)
        print(f"captcha-solvers: {n} images to read ({n} more to learn from), PNG size median {sizes[len(sizes) // 2]} bytes")
        guesses, found = structure_solver(train, test)
        right, total = rate(guesses, test)
        print(f"captcha-solvers: structure: {right}/{total} solved ({100 * right / total:.1f} %); "
              f"chunks beyond pixels: {found['extras'] or 'none'}; dark shades in 5 images: "
              f"{found['dark_shades_in_5_images']}; training images that part into 5 blobs: "
              f"{found['train_images_that_part_into_5_blobs']}")
        for variant, guesses in tesseract_solver(test, work).items():
            right, total = rate(guesses, test)
            near = sum(1 for g, (_, a) in zip(guesses, test) if sum(x == y for x, y in zip(g, a)) >= 3)
            print(f"captcha-solvers: tesseract ({variant}): {right}/{total} solved ({100 * right / total:.1f} %); "
                  f"3 or more characters right in place: {near}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
