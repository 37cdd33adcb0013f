"""The smallest complete dcpose-trt application: camera or video in, poses out (one JSON line per frame).

    python examples/edge_app.py --video 0 --detector yolov8n.onnx            # camera 0, YOLO person boxes
    python examples/edge_app.py --video clip.mp4 --boxes boxes.json --model dcpose.fp16.plan
"""

from __future__ import annotations

import argparse
import json
import sys

from dcpose_trt.data.video import BoxesFromFile, FrameSource
from dcpose_trt.errors import DcposeTrtError
from dcpose_trt.runtime import PoseEstimator, stream_poses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="poses from a camera or a video")
    ap.add_argument("--video", default="0", help="camera index, video file or folder of frames")
    ap.add_argument("--model", help="checkpoint, ONNX or TensorRT plan (default: the bundled model)")
    ap.add_argument("--backend", default="auto", help="auto, torch, onnxruntime, openvino, tensorrt, ...")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--boxes", help="person boxes file (COCO detections or per-frame boxes.json)")
    src.add_argument("--detector", help="YOLO person detector (ONNX, Ultralytics layout)")
    args = ap.parse_args(argv)
    try:
        frames = FrameSource(args.video)
        if args.boxes:
            boxes = BoxesFromFile(args.boxes, frames.names())
        else:
            from dcpose_trt.runtime.detector import YoloDetector

            boxes = YoloDetector(args.detector)
        # auto: TensorRT for a .plan, ONNX Runtime for an ONNX, the fastest CPU backend for a checkpoint.
        with PoseEstimator(args.model, backend=args.backend) as estimator:
            # Frames keep their positions (an unreadable one is skipped); poses come one frame late
            # (look-ahead), the last one at the end of the stream.
            for result in stream_poses(estimator, frames.indexed(), boxes):
                print(json.dumps(result.to_json()), flush=True)
    except DcposeTrtError as exc:
        print(f"edge_app: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
