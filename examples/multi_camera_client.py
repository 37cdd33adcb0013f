"""Several cameras (or videos) as live streams on one dcpose-trt Triton server.

    dcpose-trt serve export --out repo            # once: the bundled tiny model, CPU part models
    dcpose-trt serve start --repo repo            # in another terminal: gRPC on 127.0.0.1:8001
    python examples/multi_camera_client.py --url 127.0.0.1:8001 --detector yolo.onnx 0 1 clip.mp4

Each source is one stream (one thread, one :class:`~dcpose_trt.serve.client.StreamClient`): its frames
go to the server in order, and every frame's poses come back exactly once, one frame later (DCPose
refines frame t with t+1). The server keeps each stream's state and batches the persons of all streams.
"""

from __future__ import annotations

import argparse
import sys
import threading

from dcpose_trt.data.video import BoxesFromFile, FrameSource
from dcpose_trt.runtime.boxes import clip_boxes
from dcpose_trt.runtime.estimator import FramePoses
from dcpose_trt.serve.client import StreamClient


def camera(url: str, source: str, boxes: str | None, detector: str | None, max_frames: int | None,
           lock: threading.Lock) -> None:
    src = FrameSource(source)
    if detector:
        from dcpose_trt.runtime.detector import YoloDetector

        find = YoloDetector(detector)
    else:
        find = BoxesFromFile(str(boxes), src.names())

    def show(done: list[FramePoses]) -> None:
        with lock:
            for r in done:
                ids = [p.track_id for p in r.persons]
                print(f"{source}: frame {r.index}: {len(r.persons)} person(s), tracks {ids}", flush=True)

    with StreamClient(url) as client:
        for n, (i, frame) in enumerate(src.indexed()):
            if max_frames is not None and n >= max_frames:
                break
            b, _, _ = clip_boxes(find(i, frame), frame.shape)
            show(client.process(frame, b))
        show(client.flush())  # the end of the stream: the last frame's poses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", help="camera indices, video files or frame folders (one stream each)")
    p.add_argument("--url", default="127.0.0.1:8001", help="the server's gRPC address")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--detector", help="YOLO person detector (ONNX), run here")
    src.add_argument("--boxes", help="one boxes file for every source (tests, recorded videos)")
    p.add_argument("--max-frames", type=int, help="frames per stream")
    args = p.parse_args(argv)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(source: str) -> None:
        try:
            camera(args.url, source, args.boxes, args.detector, args.max_frames, lock)
        except Exception as exc:  # noqa: BLE001 - one camera failing does not stop the others
            errors.append(exc)
            with lock:
                print(f"{source}: {exc}", file=sys.stderr)

    threads = [threading.Thread(target=run, args=(s,)) for s in args.sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
