"""Developer tools of dcpose-trt (not installed with the package)."""
