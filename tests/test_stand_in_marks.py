"""Property: the stand-in mark scanner (batteryless.stand_in) finds exactly the marks an image carries,
wherever they sit in its segments, and nothing in bytes without one."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from batteryless.flash.images import from_segments
from batteryless.stand_in import MARKER, image_stand_ins

_reason = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=80),
    st.sampled_from(["", " ", "  x  "]),  # empty and blank reasons: still a stand-in
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=64), st.one_of(st.none(), _reason)), min_size=1, max_size=5),
    st.binary(max_size=32),
)
def test_scanner_finds_exactly_the_marks(pieces, tail):
    data = b""
    expected: list[str] = []
    for filler, reason in pieces:
        data += filler
        if reason is not None:
            data += MARKER + reason.encode() + b"\0"
            expected.append(reason.strip() or "(the mark gives no reason)")
    data += tail
    fillers = b"".join(f for f, _ in pieces) + tail
    assume(MARKER[:4] not in fillers)  # random bytes do not spell a mark of their own
    img = from_segments([(0x4000, data)]) if data else from_segments([(0x4000, b"\x00")])
    assert image_stand_ins(img) == list(dict.fromkeys(r for r in expected))


@given(st.binary(min_size=1, max_size=256))
def test_no_mark_no_stand_in(data):
    assume(MARKER not in data)
    assert image_stand_ins(from_segments([(0x4400, data)])) == []
