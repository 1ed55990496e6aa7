"""What a text costs: GSM-7 160 characters in one segment and 153 in each of several, UCS-2
70 and 67 as soon as one character is outside the GSM alphabet."""

import pytest

from notifications.messages.segments import count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("é" * 160, "GSM-7", 1),  # é, ñ, ü are in the GSM alphabet
        ("€" * 80, "GSM-7", 1),  # the extension table: two septets each
        ("€" * 81, "GSM-7", 2),
        ("á" + "a" * 69, "UCS-2", 1),  # á is not: the whole text goes as UCS-2
        ("á" + "a" * 70, "UCS-2", 2),
        ("á" * 134, "UCS-2", 2),
        ("á" * 135, "UCS-2", 3),
        ("🙂" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units
        ("🙂" * 36, "UCS-2", 2),
    ],
)
def test_segments_by_encoding(text, encoding, segments):
    count = count_segments(text)

    assert (count.encoding, count.segments, count.characters) == (encoding, segments, len(text))
