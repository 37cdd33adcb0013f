"""Benchmarks of dcpose-trt (GPU timings are recorded in results/ with machine and date)."""
