"""How long a text is: GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2; and in how many parts.

One part holds 160 GSM-7 characters (an extension character such as € or [ takes two) or 70 UCS-2 units
(a character outside the Basic Multilingual Plane, e.g. an emoji, takes two); a longer text is sent as
parts of 153 or 67, each carrying the header that joins them again on the phone.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class Length:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int

    @property
    def per_part(self) -> int:
        single, multi = LIMITS[self.encoding]
        return single if self.parts <= 1 else multi

    def describe(self) -> str:
        kind = "standard characters" if self.encoding == "GSM-7" else "characters outside the standard text alphabet (fewer fit in a part)"
        return f"{self.units:,} characters of {kind}: {self.parts} part{'s' if self.parts != 1 else ''} of at most {self.per_part}"


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def length(text: str) -> Length:
    """The encoding a text needs, its length in that encoding, and how many parts it goes out in."""
    if is_gsm7(text):
        encoding, units = "GSM-7", sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    else:
        encoding, units = "UCS-2", len(text.encode("utf-16-le")) // 2
    single, multi = LIMITS[encoding]
    parts = 0 if units == 0 else 1 if units <= single else -(-units // multi)
    return Length(encoding=encoding, units=units, parts=parts)
