"""graphcap's runtime for captured graphs (planned; nothing is implemented here yet).

It will hold ``Session(graph | onnx path | ModelProto, device="cpu"|"cuda",
backend="auto"|"interpreter"|"onnxruntime")`` with ``Session.run(feeds) -> dict`` and
``load(path)``: a NumPy interpreter that calls each registry op's kernel (the reference
semantics, small enough to embed), and an onnxruntime backend for CPU and CUDA. Until the
capture issue lands, graphcap runs eagerly only, through ``tracer``.
"""
