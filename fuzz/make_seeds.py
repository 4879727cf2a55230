#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/: small valid inputs for every parser.

Standard library only. Run from the repository root after `cargo build --release` (the trained
model and the shard manifest come from the microtask binary):  python3 fuzz/make_seeds.py
"""
import gzip, hashlib, json, os, shutil, struct, subprocess, sys, tempfile, zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(ROOT, "seeds")
BIN = os.path.join(ROOT, "..", "target", "release", "microtask")


def put(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


def idx_images(count, h, w, pixels):
    return struct.pack(">IIII", 2051, count, h, w) + bytes(pixels)


def idx_labels(labels):
    return struct.pack(">II", 2049, len(labels)) + bytes(labels)


def png_gray(w, h, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_rgba(w, h):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + bytes([10, 200, 30, 255] * w) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def npy(descr, shape, data):
    shape_txt = "(%s,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_txt)
    pad = 64 - (10 + len(d) + 1) % 64
    header = (d + " " * pad + "\n").encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def safetensors(meta, tensors):
    header, data, at = {"__metadata__": meta}, b"", 0
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + len(raw)]}
        data, at = data + raw, at + len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    images = idx_images(2, 2, 2, [0, 255, 7, 9, 1, 2, 3, 4])
    labels = idx_labels([3, 1])
    synth = idx_images(1, 28, 28, [(i * 7) % 256 for i in range(784)])
    for t in ("idx_raw", "idx_gz"):
        put(t, "images-2x2", images)
        put(t, "labels-2", labels)
        put(t, "images-28x28", synth)
    put("gzip", "images-2x2.gz", gzip.compress(images, mtime=0))
    put("gzip", "labels-2.gz", gzip.compress(labels, mtime=0))

    put("images", "png-gray-2x2", b"\x00" + png_gray(2, 2, [[0, 255], [128, 7]]))
    put("images", "png-rgba-3x2", b"\x00" + png_rgba(3, 2))
    jpeg = os.path.join(ROOT, "seeds-src", "python-16x16.jpg")
    with open(jpeg, "rb") as f:
        put("images", "jpeg-16x16", b"\x01" + f.read())

    put("npy", "u8-2x3", npy("|u1", [2, 3], bytes(range(6))))
    put("npy", "f32-2x2", npy("<f4", [2, 2], struct.pack("<4f", 0.5, -1.0, 2.0, 3.5)))
    put("npy", "f2-1x2", npy("<f2", [1, 2], b"\x00\x3c\x00\x40"))
    put("npy", "labels-i8", npy("<i8", [3], struct.pack("<3q", 0, 9, 255)))
    put("npy", "labels-u1-n1", npy("|u1", [2, 1], b"\x01\x02"))

    put("votes", "plain", b"task,worker,label\nt1,w1,cat\nt1,w2,dog\nt2,w1,dog\n")
    put("votes", "confidence-quoted-bom",
        b"\xef\xbb\xbfworker,task,label,confidence\r\nw1,\"t,1\",3,0.9\r\nw2,\"t,1\",\"3\",1\r\n")
    put("gold", "plain", b"task,label\nt1,cat\nt2,dog\n")
    put("gold", "quoted", b"label,task\n\"dog\",\"t,3\"\ncat,t1\n1,7\n")

    put("model", "tiny-2x2", safetensors(
        {"workers": "1", "classes": "2", "height": "2", "width": "2"},
        [("weight", [2, 4], [0.1, -0.2, 0.3, 0.4, 0.5, 0.6, -0.7, 0.8]), ("bias", [2], [0.0, 1.0])]))

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", tmp))
        model = os.path.join(tmp, "m.safetensors")
        run = lambda *a: subprocess.run([BIN, *a], check=True, env=env, capture_output=True)
        run("train", "--data", "synth:200", "--workers", "1", "--epochs", "1", "--out", model)
        with open(model, "rb") as f:
            put("model", "trained-synth200", f.read())
        shards = os.path.join(tmp, "shards")
        run("classify", "--backend", "cpu", "--data", "synth:10", "--model", model,
            "--shard", "0/1", "--out", shards)
        with open(os.path.join(shards, "part-0-of-1.json")) as f:
            manifest = json.load(f)
        # The fuzz target's part file (fixed bytes): the seed describes it, so it passes.
        part = b"task,worker,label,confidence\n0,w0,3,0.9\n"
        manifest.update(bytes=len(part), sha256=hashlib.sha256(part).hexdigest())
        put("manifest", "part-0-of-1", json.dumps(manifest, indent=2).encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main())
