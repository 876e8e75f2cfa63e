"""Read the few EXIF fields that speak to an image's origin.

Software, Make and Model name the producing program or camera; UserComment is where AUTOMATIC1111
and others put their generation settings in JPEG and WebP. UserComment starts with an 8-byte
character code, and its "UNICODE" text is UTF-16 whose byte order writers get wrong, so the order
is taken from a byte-order mark, then from where the zero bytes fall, then from the TIFF header.
"""

from __future__ import annotations

MAX_VALUE = 64 << 10  # characters kept of one field

_IFD0_FIELDS = {0x0131: "Software", 0x010F: "Make", 0x0110: "Model"}
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286


def read_exif(raw: bytes, notes: list[str]) -> dict[str, str]:
    """The origin fields of an EXIF block (a TIFF structure, optionally behind "Exif\\0\\0")."""
    from PIL import Image  # only files with EXIF pay for Pillow

    tiff = raw.removeprefix(b"Exif\x00\x00")
    exif = Image.Exif()
    try:
        exif.load(tiff)
        fields = {name: exif.get(tag) for tag, name in _IFD0_FIELDS.items()}
        fields["UserComment"] = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception as err:  # Pillow raises many types on malformed TIFF structures
        notes.append(f"EXIF unreadable: {type(err).__name__}")
        return {}
    found: dict[str, str] = {}
    for name, value in fields.items():
        if isinstance(value, bytes) and name == "UserComment":
            value = user_comment(value, tiff[:2], notes)
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str) and value.strip("\x00 "):
            found[name] = value.strip("\x00 ")[:MAX_VALUE]
    return found


def user_comment(value: bytes, byte_order: bytes, notes: list[str]) -> str:
    """Decode UserComment by its character code: ASCII, UNICODE (UTF-16) or undefined."""
    code, text = value[:8], value[8:]
    if code == b"UNICODE\x00":
        return _utf16(text, byte_order, notes)
    if code == b"JIS\x00\x00\x00\x00\x00":
        notes.append("EXIF UserComment in JIS encoding: not decoded")
        return ""
    if code not in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        notes.append("EXIF UserComment without a known character code: read as UTF-8")
        text = value
    return text.decode("utf-8", errors="replace")


def _utf16(text: bytes, byte_order: bytes, notes: list[str]) -> str:
    if text[:2] in (b"\xfe\xff", b"\xff\xfe"):
        encoding = "utf-16"
    else:
        high_zeros, low_zeros = text[0::2].count(0), text[1::2].count(0)
        if high_zeros != low_zeros:
            encoding = "utf-16-be" if high_zeros > low_zeros else "utf-16-le"
        else:
            encoding = "utf-16-be" if byte_order == b"MM" else "utf-16-le"
    try:
        return text.decode(encoding)
    except UnicodeDecodeError:
        notes.append("EXIF UserComment is not valid UTF-16: undecodable bytes replaced")
        return text.decode(encoding, errors="replace")
