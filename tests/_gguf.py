"""Write tiny GGUF headers for tests (no real weights)."""

import struct


def _s(text: str) -> bytes:
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def _value(v):
    if isinstance(v, bool):
        return struct.pack("<I", 7) + struct.pack("<?", v)
    if isinstance(v, int):
        return struct.pack("<I", 4) + struct.pack("<I", v)
    if isinstance(v, float):
        return struct.pack("<I", 6) + struct.pack("<f", v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + _s(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return struct.pack("<I", 9) + struct.pack("<IQ", 8, len(v)) + b"".join(_s(x) for x in v)
        return struct.pack("<I", 9) + struct.pack("<IQ", 5, len(v)) + b"".join(struct.pack("<i", x) for x in v)
    raise TypeError(v)


def write_gguf(path, metadata: dict, tensors: dict[str, tuple[int, ...]], truncate: int | None = None):
    out = b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", len(tensors), len(metadata))
    for k, v in metadata.items():
        out += _s(k) + _value(v)
    offset = 0
    for name, shape in tensors.items():
        out += _s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, offset)
        offset += 4
    if truncate:
        out = out[:truncate]
    path.write_bytes(out)
    return path
