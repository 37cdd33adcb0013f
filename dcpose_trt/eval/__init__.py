"""Evaluation: PoseTrack AP (poseval), COCO OKS AP (pycocotools, optional), result files."""
