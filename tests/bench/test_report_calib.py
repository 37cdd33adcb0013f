"""The committed run's command line names the INT8 calibration options it ran with (they change INT8 rows)."""

from __future__ import annotations

from benchmarks.report import _calib_flags


def test_calibration_flags_are_part_of_the_run_line():
    assert _calib_flags({"calib": None, "calib_boxes": None, "calib_samples": None}) == ""
    assert _calib_flags({"calib": "clip", "calib_boxes": "b.json", "calib_samples": 48}) == (
        " --calib clip --calib-boxes b.json --calib-samples 48")
