"""MNIST as NumPy matrices, for trying `--data FILE.npy` as a user with embeddings would.

Writes, into OUT (default: mnist-npy/ here), for the train and test sets:
  {train,test}-u8.npy   u8 [N, 784] pixels
  {train,test}-f32.npy  f32 [N, 784] pixels / 255 (features)
  {train,test}-f16.npy  f16 [N, 784] pixels / 255 (features)
and beside each FILE.npy its labels as FILE-labels.npy (int64 [N]), the name `train` and
`classify` look for.

Usage: python3 scripts/mnist_npy.py [--mnist ../shared/data/mnist] [--out mnist-npy]
(needs NumPy: ../shared/bench/.venv/bin/python3 has it).
"""
import argparse, gzip, os, struct
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--mnist", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
ap.add_argument("--out", default="mnist-npy")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)


def idx(name):
    raw = gzip.open(os.path.join(a.mnist, name)).read()
    magic = struct.unpack(">I", raw[:4])[0]
    dims = struct.unpack(">" + "I" * (magic & 0xFF), raw[4:4 + 4 * (magic & 0xFF)])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims[0], -1)


for part, prefix in [("train", "train"), ("test", "t10k")]:
    x = idx(f"{prefix}-images-idx3-ubyte.gz")
    y = idx(f"{prefix}-labels-idx1-ubyte.gz").reshape(-1).astype(np.int64)
    f = x.astype(np.float32) / np.float32(255)
    for kind, m in [("u8", x), ("f32", f), ("f16", f.astype(np.float16))]:
        path = os.path.join(a.out, f"{part}-{kind}.npy")
        np.save(path, np.ascontiguousarray(m))
        np.save(path[:-4] + "-labels.npy", y)
        print(path, m.shape, m.dtype)
