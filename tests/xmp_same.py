#!/usr/bin/python3
"""xmp_same.py BEFORE AFTER - exit 0 when AFTER is BEFORE with only its XMP
(and the legacy copies of the description) changed: the decoded pixels are
equal, and so is every other part of the file.  JPEG: every marker segment
but the XMP APP1, the Exif APP1 and the Photoshop APP13 byte for byte, the
entropy-coded data byte for byte, and every Exif tag and IPTC dataset but
the description's legacy copies; PNG: every chunk but the iTXt
XML:com.adobe.xmp; TIFF: every tag but XMLPacket (700), ImageDescription
(270), IPTC (33723), Photoshop (34377) and the strip offsets (they move
when the IFD grows).

The legacy copies: Adobe's XMP Toolkit (exempi) writes dc:description
into Exif ImageDescription and IPTC Caption-Abstract too, as the Metadata
Working Group's guidelines ask (so that no reader shows a stale caption);
it has no switch to skip that.  Those two values are checked to be the
caption."""
import sys
import numpy as np
from PIL import Image

XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\0"


LEGACY_EXIF = {270}
LEGACY_IPTC = {(2, 120), (1, 90), (2, 0)}  # Caption-Abstract, and the charset/version it brings


def jpeg_legacy(path):
    im = Image.open(path)
    exif = {k: v for k, v in im.getexif().items() if k not in LEGACY_EXIF}
    from PIL import IptcImagePlugin
    iptc = IptcImagePlugin.getiptcinfo(im) or {}
    return exif, {k: v for k, v in iptc.items() if k not in LEGACY_IPTC}


def jpeg_parts(b):
    assert b[:2] == b"\xff\xd8", "not a JPEG"
    parts, i = [], 2
    while i < len(b):
        assert b[i] == 0xFF, "bad marker at %d" % i
        m = b[i + 1]
        if m == 0xD9:
            break
        n = int.from_bytes(b[i + 2:i + 4], "big")
        seg = b[i + 2:i + 2 + n]
        legacy = (m == 0xE1 and seg[2:8] == b"Exif\0\0") or (m == 0xED and seg[2:16] == b"Photoshop 3.0\0")
        if not (m == 0xE1 and seg[2:].startswith(XMP_APP1)) and not legacy:
            parts.append((m, seg))
        i += 2 + n
        if m == 0xDA:  # scan data runs to EOI
            parts.append(("scan", b[i:]))
            break
    return parts


def png_parts(b):
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    parts, i = [], 8
    while i < len(b):
        n = int.from_bytes(b[i:i + 4], "big")
        t, d = b[i + 4:i + 8], b[i + 8:i + 8 + n]
        if not (t == b"iTXt" and d.startswith(b"XML:com.adobe.xmp\0")):
            parts.append((t, d))
        i += 12 + n
    return parts


def tiff_parts(path):
    im = Image.open(path)
    skip = {700, 270, 33723, 34377, 273, 279, 324, 325}  # XMP, its legacy copies, strip/tile offsets and counts
    return sorted((k, repr(v)) for k, v in im.tag_v2.items() if k not in skip)


def parts(path):
    b = open(path, "rb").read()
    if b[:2] == b"\xff\xd8":
        return jpeg_parts(b), jpeg_legacy(path)
    if b[:4] == b"\x89PNG":
        return png_parts(b)
    if b[:2] in (b"II", b"MM"):
        return tiff_parts(path)
    return [("bytes", b)]


before, after = sys.argv[1], sys.argv[2]
pa, pb = np.asarray(Image.open(before)), np.asarray(Image.open(after))
if pa.shape != pb.shape or not np.array_equal(pa, pb):
    sys.exit("decoded pixels differ")
if parts(before) != parts(after):
    sys.exit("a non-XMP part of the file differs")
if len(sys.argv) > 3:  # the caption: the legacy copies, where there are any, hold it
    im = Image.open(after)
    desc = im.getexif().get(270) if im.format in ("JPEG", "TIFF") else None
    if desc is not None and desc != sys.argv[3]:
        sys.exit("Exif ImageDescription %r is not the caption" % desc)
