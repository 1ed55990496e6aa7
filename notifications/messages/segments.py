"""How many SMS segments a text takes, as carriers bill it: GSM-7 when every character is in
the GSM 03.38 alphabet (160 characters in one segment, 153 in each of several; the extension
table's characters count twice), else UCS-2 (70, then 67, counted in UTF-16 units)."""

import math
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentCount:
    characters: int
    encoding: str
    segments: int


def count_segments(text):
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        units = len(text) + sum(char in GSM7_EXTENSION for char in text)
        encoding, single, each = "GSM-7", 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        encoding, single, each = "UCS-2", 70, 67
    segments = 0 if not units else 1 if units <= single else math.ceil(units / each)
    return SegmentCount(characters=len(text), encoding=encoding, segments=segments)
