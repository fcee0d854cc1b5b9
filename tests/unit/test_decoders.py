"""Incremental SSE / NDJSON decoding over arbitrary chunk boundaries."""

import random

from arun.wire.decoders import NDJSONDecoder, SSEDecoder

STREAM = (
    b": keep-alive\n\n"
    b"event: message_start\ndata: {\"a\": 1}   \n\n"
    b"data: line1\ndata: line2\n\n"
    b"id: 7\nretry: 100\ndata:nospace\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [("message_start", b'{"a": 1}   '), (None, b"line1\nline2"), (None, b"nospace"), (None, b"[DONE]")]


def feed_all(decoder, data, sizes):
    out, i = [], 0
    for size in sizes:
        out += decoder.feed(data[i : i + size])
        i += size
    out += decoder.feed(data[i:])
    return out + decoder.close()


def test_whole_stream_in_one_chunk():
    assert feed_all(SSEDecoder(), STREAM, []) == EXPECTED


def test_every_split_point_gives_the_same_events():
    for cut in range(1, len(STREAM)):
        assert feed_all(SSEDecoder(), STREAM, [cut]) == EXPECTED, cut


def test_byte_by_byte_and_random_chunks():
    assert feed_all(SSEDecoder(), STREAM, [1] * len(STREAM)) == EXPECTED
    rng = random.Random(7)
    for _ in range(50):
        sizes = [rng.randint(1, 9) for _ in range(20)]
        assert feed_all(SSEDecoder(), STREAM, sizes) == EXPECTED


def test_crlf_and_cr_line_endings_including_split_crlf():
    crlf = STREAM.replace(b"\n", b"\r\n")
    cr = STREAM.replace(b"\n", b"\r")
    for data in (crlf, cr):
        assert feed_all(SSEDecoder(), data, []) == EXPECTED
        for cut in range(1, len(data)):
            assert feed_all(SSEDecoder(), data, [cut]) == EXPECTED, (data[:20], cut)


def test_unterminated_last_event_is_flushed_on_close():
    d = SSEDecoder()
    assert d.feed(b"data: tail") == []
    assert d.close() == [(None, b"tail")]


def test_ndjson_lines_across_boundaries():
    data = b'{"a":1}\n\n{"b":2}\r\n{"c":3}'
    for cut in range(1, len(data)):
        d = NDJSONDecoder()
        lines = d.feed(data[:cut]) + d.feed(data[cut:]) + d.close()
        assert [line.strip() for line in lines] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_named_events_in_every_shape_decode_as_the_general_rules_say():
    # the common "event: name\ndata: ..." shape and its near misses (spacing, extra lines, no data)
    data = (
        b"event: content_block_delta\ndata: {\"t\": 1}\n\n"
        b"event:  padded  \ndata: x\n\n"
        b"event: ping\ndata:nospace\n\n"
        b"event: multi\ndata: a\ndata: b\n\n"
        b"event: with_id\ndata: y\nid: 3\n\n"
        b"event: no_data\n\n"
        b"event: \ndata: unnamed\n\n"
    )
    expected = [
        ("content_block_delta", b'{"t": 1}'),
        ("padded", b"x"),
        ("ping", b"nospace"),
        ("multi", b"a\nb"),
        ("with_id", b"y"),
        ("", b"unnamed"),
    ]
    assert feed_all(SSEDecoder(), data, []) == expected
    for cut in range(1, len(data)):
        assert feed_all(SSEDecoder(), data, [cut]) == expected, cut
    assert feed_all(SSEDecoder(), data.replace(b"\n", b"\r\n"), []) == expected
