"""Small real media files for tests: a JPEG (optionally with an EXIF GPS position), a PNG, an Ogg Opus
stream of a given length (pages with granule positions; the audio itself is silence-shaped bytes)."""

from __future__ import annotations

import io
import struct


def sample_jpeg(gps: bool = False, size: tuple[int, int] = (32, 24), color: str = "orange") -> bytes:
    from PIL import Image

    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    if gps:
        exif = image.getexif()
        exif[0x010F] = "TestCam"
        exif[0x8825] = {1: "N", 2: (29.0, 39.0, 21.0), 3: "E", 4: (91.0, 7.0, 19.0)}
        image.save(out, "JPEG", exif=exif.tobytes())
    else:
        image.save(out, "JPEG")
    return out.getvalue()


def _ogg_page(granule: int, sequence: int, payload: bytes, header_type: int = 0) -> bytes:
    segments = [255] * (len(payload) // 255) + [len(payload) % 255]
    return (b"OggS" + bytes([0, header_type]) + struct.pack("<qIII", granule, 1234, sequence, 0)
            + bytes([len(segments)]) + bytes(segments) + payload)


def sample_ogg_opus(seconds: float = 3.0) -> bytes:
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    audio = bytes(200)
    return (_ogg_page(0, 0, head, 2) + _ogg_page(0, 1, tags) + _ogg_page(int(seconds * 48000), 2, audio, 4))


def sample_webm() -> bytes:
    """The start of a WebM file as browsers record it (EBML header); enough for the container check."""
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm" + bytes(300)
