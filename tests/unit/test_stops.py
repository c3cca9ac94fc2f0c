"""StopScanner: text that might become a stop string is held, never leaked."""

from __future__ import annotations

from offramp.providers.llamacpp.stops import Piece, StopScanner


def _run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    scanner = StopScanner(stops)
    out: list[str] = []
    for text in pieces:
        emitted, stopped = scanner.feed(Piece(text))
        out.extend(p.text for p in emitted)
        if stopped:
            return "".join(out), True
    out.extend(p.text for p in scanner.flush())
    return "".join(out), False


def test_no_stops_passes_everything() -> None:
    assert _run((), ["a", "b"]) == ("ab", False)


def test_stop_inside_one_piece_cuts_there() -> None:
    assert _run(("END",), ["hello EN", "D world"]) == ("hello ", True)


def test_stop_spanning_pieces_is_never_emitted() -> None:
    scanner = StopScanner(("</a>",))
    first, stopped = scanner.feed(Piece("x </"))
    assert [p.text for p in first] == [] and not stopped  # "x </" could start the stop
    second, stopped = scanner.feed(Piece("a> y"))
    assert "".join(p.text for p in second) == "x " and stopped


def test_false_alarm_is_released() -> None:
    assert _run(("STOP",), ["ST", "ART", "ed"]) == ("STARTed", False)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(("b", "a"), ["xyab"]) == ("xy", True)


def test_logprobs_stay_with_their_pieces() -> None:
    scanner = StopScanner(("!",))
    emitted, stopped = scanner.feed(Piece("hi!", logprob=None))
    assert stopped and [p.text for p in emitted] == ["hi"]
