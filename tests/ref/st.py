"""Minimal safetensors reader/writer (F32 and I64 only), no dependencies
beyond numpy.

Format: 8-byte little-endian u64 header length N, then N bytes of JSON
(compact, "__metadata__" first, tensors in insertion order with
contiguous "data_offsets" relative to the start of the data section),
padded with spaces so N is a multiple of 8, then the raw little-endian
tensor data.
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_NP_TO_ST = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}


def _as_array(t):
    if hasattr(t, "detach"):  # torch.Tensor
        t = t.detach().cpu().contiguous().numpy()
    a = np.asarray(t)
    if a.dtype not in _NP_TO_ST:
        raise TypeError("unsupported dtype %s" % a.dtype)
    return a


def serialize(tensors, metadata=None):
    """tensors: ordered mapping name -> torch.Tensor/np.ndarray."""
    header = {}
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata must map str -> str")
        header["__metadata__"] = dict(metadata)
    blobs = []
    off = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("reserved tensor name")
        a = _as_array(t)
        st = _NP_TO_ST[a.dtype]
        data = np.ascontiguousarray(a, dtype=_DTYPES[st]).tobytes()
        header[name] = {"dtype": st, "shape": [int(d) for d in a.shape],
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hj = json.dumps(header, separators=(",", ":"),
                    ensure_ascii=False).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def save_file(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata))


def deserialize(buf):
    """Returns (metadata or None, dict name -> np.ndarray) in file order.
    Validates the layout strictly."""
    if len(buf) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError("header length past end of file")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data = buf[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is not None and not all(isinstance(k, str) and isinstance(v, str)
                                    for k, v in meta.items()):
        raise ValueError("metadata must map str -> str")
    out = {}
    spans = []
    for name, info in header.items():
        dt = _DTYPES[info["dtype"]]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise ValueError("bad data_offsets for %s" % name)
        spans.append((b, e))
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(shape).copy()
    pos = 0
    for b, e in sorted(spans):
        if b != pos:
            raise ValueError("tensor data not contiguous")
        pos = e
    if pos != len(data):
        raise ValueError("trailing bytes after tensor data")
    return meta, out


def load_file(path):
    with open(path, "rb") as f:
        return deserialize(f.read())


def check_roundtrip(path, tensors, metadata=None):
    """Re-read path and assert it holds exactly tensors (same order, dtype,
    shape, bitwise-equal values) and metadata."""
    meta, got = load_file(path)
    assert meta == (dict(metadata) if metadata is not None else None), path
    assert list(got) == list(tensors), (path, list(got), list(tensors))
    for name, t in tensors.items():
        a = _as_array(t)
        g = got[name]
        assert g.dtype == a.dtype and g.shape == a.shape, (path, name)
        assert g.tobytes() == np.ascontiguousarray(a).tobytes(), (path, name)
    return meta, got
