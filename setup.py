"""dcpose-trt: DCPose from PyTorch to TensorRT, with a low-latency runtime."""

from setuptools import find_packages, setup

ONNX = ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.25", "onnxslim>=0.1.50"]
TRITON = ["triton>=3.3"]
# cuda-python 13.x is linked against the CUDA 13 runtime (needs an R580+ driver); 12.6.0 has no
# cuda.bindings. A CUDA stack = cuda-python + TensorRT + lean runtime built for the same CUDA major:
# [cuda12] for JetPack-6-era / pre-R580 drivers, [cuda13] for current drivers (`dcpose-trt doctor` says which).
# [cuda], [trt], [lean] stay unpinned to a CUDA major (newest wheels, i.e. CUDA 13) for existing installs.
CUDA = ["cuda-python>=12.6.2"]
CUDA12 = ["cuda-python>=12.6.2,<13", "tensorrt-cu12>=10.3,<12", "tensorrt-lean-cu12>=10.3,<12"]
CUDA13 = ["cuda-python>=13.0,<14", "tensorrt-cu13>=10.13,<12", "tensorrt-lean-cu13>=10.13,<12"]
# Jetson: TensorRT and CUDA come with JetPack (apt); only cuda-python is installed, pinned to the JetPack's
# CUDA major.minor because L4T has no minor-version compatibility (cuda-python 12.9 on JetPack 6's CUDA 12.6
# fails with cudaErrorInsufficientDriver). JetPack 6.x = CUDA 12.6, JetPack 7.x = CUDA 13.0.
JETSON6 = ["cuda-python>=12.6.2,<12.7"]
JETSON7 = ["cuda-python>=13.0,<13.1"]
TRT = ["tensorrt>=10.3"] + CUDA
RTX = ["tensorrt-rtx>=1.0"] + CUDA
LEAN = ["tensorrt-lean>=10.3"] + CUDA
BENCH = ["matplotlib>=3.7"]
OPENVINO = ["openvino>=2025.0", "nncf>=2.14"]
EVAL = ["pycocotools>=2.0.7"]
# Triton serving client (`dcpose-trt serve`); tritonclient[grpc] minus its protobuf<7 pin. The server binary
# comes from nvidia-pytriton (x86-64), which pins numpy<2: install it with `pip install --no-deps nvidia-pytriton`.
SERVE = ["tritonclient>=2.50", "grpcio>=1.64", "python-rapidjson>=0.9", "packaging>=21"]
RAY = ["ray>=2.59"]  # many videos on a cluster: `dcpose-trt predict --workers N`
DEV = [
    "pytest>=8",
    "hypothesis>=6.100",
    "ruff>=0.6",
    "mypy>=1.10",
    "pybind11-stubgen>=3.0",
]

setup(
    name="dcpose-trt",
    version="0.1.0",
    description="DCPose video human-pose estimation: PyTorch -> ONNX -> TensorRT, with a low-latency runtime",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["dcpose_trt", "dcpose_trt.*", "benchmarks"]),
    package_data={"dcpose_trt": ["assets/*.pth", "assets/*.json", "assets/*.md", "schemas/*.json",
                                 "engine/ov_dcn/*.cpp"]},
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "numpy>=1.24",
        "packaging>=21",
        # contrib: OpenCV 5 keeps the HOG people detector (the built-in person detector) in the contrib
        # wheels. It replaces opencv-python-headless (both install the same cv2 package: keep only one).
        "opencv-contrib-python-headless>=4.8",
        "jsonschema>=4.18",  # the file formats' schemas (dcpose_trt/schemas), checked by the readers
        "scipy>=1.10",
        "tqdm>=4.60",
    ],
    extras_require={
        "onnx": ONNX,
        "triton": TRITON,
        "cuda": CUDA,
        "cuda12": CUDA12,
        "cuda13": CUDA13,
        "jetson6": JETSON6,
        "jetson7": JETSON7,
        "trt": TRT,
        "rtx": RTX,
        "lean": LEAN,
        "bench": BENCH,
        "eval": EVAL,
        "ray": RAY,
        "serve": SERVE,
        "openvino": OPENVINO,
        "dev": DEV,
        "all": ONNX + TRITON + CUDA + BENCH + EVAL + OPENVINO,
    },
    entry_points={"console_scripts": ["dcpose-trt=dcpose_trt.cli:main"]},
)
