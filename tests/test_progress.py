"""Progress text on a fake clock: when a bar or a line appears, what it says, and the estimate."""

import pytest

from pytest_swapkl.errors import InputError
from pytest_swapkl.progress import Display, Progress, choose_mode, duration, seconds_between_lines


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def recorder():
    events = []
    display = Display(lambda text: events.append(("redraw", text)), lambda text: events.append(("line", text)),
                      lambda: events.append(("end", "")))
    return display, events


def run(progress, clock, steps):
    """steps: (seconds later, done, total)."""
    for seconds, done, total in steps:
        clock.now += seconds
        progress(done, total)


def test_plain_lines_every_tenth_and_every_interval_then_a_closing_line():
    clock, (display, events) = Clock(), recorder()
    progress = Progress(display, "lines", every=10, clock=clock)
    run(progress, clock, [(1, 10, 1000)])  # the first second: silent
    assert events == []
    run(progress, clock, [(2, 50, 1000)])  # 3 s: the first line
    run(progress, clock, [(1, 60, 1000), (1, 70, 1000)])  # same tenth, under 10 s since the last line: silent
    run(progress, clock, [(1, 120, 1000)])  # a new tenth
    run(progress, clock, [(10, 150, 1000)])  # 10 s since the last line
    progress.close()
    texts = [text for kind, text in events]
    assert all(kind == "line" for kind, _ in events)
    assert texts[0] == "swapkl: 50/1000 probe-sequences, 3 s elapsed, ~48 s left"  # 40 in 2 s since the first call
    assert texts[1].startswith("swapkl: 120/1000 probe-sequences, 6 s elapsed, ~")
    assert texts[2].startswith("swapkl: 150/1000 probe-sequences, 16 s elapsed, ~")
    assert texts[3] == "swapkl: 150/1000 probe-sequences in 16 s"
    assert len(texts) == 4


def test_a_quick_run_prints_nothing():
    clock, (display, events) = Clock(), recorder()
    for mode in ("lines", "bar"):
        progress = Progress(display, mode, clock=clock)
        run(progress, clock, [(0.3, 50, 100), (0.3, 100, 100)])
        progress.close()
    assert events == []


def test_bar_redraws_in_place_and_ends_its_line():
    clock, (display, events) = Clock(), recorder()
    progress = Progress(display, "bar", clock=clock)
    run(progress, clock, [(1.5, 300, 1000), (0.05, 310, 1000), (0.5, 500, 1000), (0.01, 1000, 1000)])
    progress.close()
    kinds = [kind for kind, _ in events]
    assert kinds == ["redraw", "redraw", "redraw", "end"]  # the 0.05 s step is not redrawn; the last one is
    # tqdm's bar, as tqdm draws it; no rate yet after the first call, so no estimate
    assert events[0][1] == ("swapkl:  30%|█████████                     | 300/1000 probe-sequences "
                            "[00:01 elapsed, ~? left]")
    assert "100%|" + "█" * 30 + "| 1000/1000 probe-sequences" in events[2][1]
    assert events[2][1].endswith("~00:00 left]")


def test_estimate_ignores_work_taken_from_a_journal():
    clock, (display, _) = Clock(), recorder()
    progress = Progress(display, "lines", clock=clock)
    run(progress, clock, [(5, 900, 1000), (10, 950, 1000)])  # 900 resumed at once, then 50 in 10 s
    assert progress.seconds_left(950, 1000, clock.now) == pytest.approx(10.0)


def test_note_and_labels():
    clock, (display, events) = Clock(), recorder()
    Progress(display, "lines", label="step1000", clock=clock).note("loading the model")
    Progress(display, "off", clock=clock).note("never shown")
    assert events == [("line", "swapkl: step1000: loading the model")]


def test_modes_and_seconds_from_the_environment():
    assert choose_mode(True, {}) == "bar" and choose_mode(False, {}) == "lines"
    assert choose_mode(True, {"SWAPKL_PROGRESS": "lines"}) == "lines"
    assert choose_mode(False, {"SWAPKL_PROGRESS": " OFF "}) == "off"
    with pytest.raises(InputError, match="SWAPKL_PROGRESS must be one of auto, bar, lines, off"):
        choose_mode(False, {"SWAPKL_PROGRESS": "loud"})
    assert seconds_between_lines({}) == 10 and seconds_between_lines({"SWAPKL_PROGRESS_SECONDS": "2.5"}) == 2.5
    for bad in ("-1", "nan", "soon"):
        with pytest.raises(InputError, match="SWAPKL_PROGRESS_SECONDS"):
            seconds_between_lines({"SWAPKL_PROGRESS_SECONDS": bad})


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (14.2, "14 s"), (119, "119 s"), (125, "2 min 05 s"),
                                           (3720, "1 h 02 min")])
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_a_stage_is_a_fresh_count_with_its_own_label_on_the_same_display():
    """The phases after the probes (noise floor, pruning costs) each get their own count and estimate; a
    labelled run (a trajectory's checkpoint) keeps its label in front; the open bar is finished first."""
    clock, (display, events) = Clock(), recorder()
    progress = Progress(display, "bar", label="step1000", clock=clock)
    run(progress, clock, [(2, 10, 10)])
    stage = progress.stage("noise floor")
    assert events[-1] == ("end", "") and stage.mode == "bar" and stage.display is display
    run(stage, clock, [(2, 16, 32), (1, 32, 32)])
    assert events[-1][1].startswith("swapkl: step1000: noise floor: 100%|")
    lines = Progress(display, "lines", every=10, clock=clock).stage("pruning costs")
    run(lines, clock, [(3, 1, 4), (3, 2, 4)])  # one per 3 s since the first call: 2 left, ~6 s
    assert events[-1] == ("line", "swapkl: pruning costs: 2/4 probe-sequences, 6 s elapsed, ~6 s left")
