"""The wire protocol's tensors carry 0, 1 or 2 frames' poses and give them back unchanged, in order."""

from __future__ import annotations

import numpy as np
import pytest

from dcpose_trt.serve import protocol as P


@pytest.mark.parametrize("persons", [[], [0], [2], [3, 0], [1, 4]])
def test_encode_decode_round_trip(persons):
    rng = np.random.default_rng(len(persons))
    results = [P.PoseResult(7 + k, rng.random((n, 17, 3), dtype=np.float32), rng.random((n, 5), dtype=np.float32),
                            np.arange(n, dtype=np.int64) + 10 * k) for k, n in enumerate(persons)]
    tensors = P.encode(results, live=3)
    assert set(tensors) == set(P.OUTPUTS)
    assert all(t.shape[0] == 1 for t in tensors.values())  # the batch dimension of one request
    assert tensors[P.LIVE_STREAMS].item() == 3
    back = P.decode(tensors)
    assert [r.index for r in back] == [r.index for r in results]
    for got, want in zip(back, results, strict=True):
        np.testing.assert_array_equal(got.keypoints, want.keypoints)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.track_ids, want.track_ids)
