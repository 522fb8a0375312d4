"""Vision inference: OpenCV preprocessing, ONNX Runtime (default) and Ultralytics runtimes.

Model output becomes `cdat` types here, at the boundary. Nothing loads at import time.

Public API (what the service calls)::

    from inference.loading import build_analyzer
    from inference.readiness import readiness
    analyzer = build_analyzer(settings)        # once per worker process (after fork);
                                               # raises cdat.errors.ModelUnavailable
    analyses = analyzer.analyze(photos)        # list[PhotoAnalysis], one per PhotoInput
    analyzer.model_versions                    # {"damage": id, "parts": id}
    readiness(settings).as_dict()              # {"ready": bool, "models": {...}}, loads nothing

    from inference.overlay import render_overlay
    jpeg = render_overlay(photo_bytes, analysis, audience="adjuster" | "policyholder")

    from inference.quality import perceptual_hash, hamming   # 16-hex-char 64-bit DCT pHash

    from cdat.merge import merge_findings      # claim view: tuple[PartFinding, ...]

Modules: `imaging` (decode, EXIF, colour, letterbox), `runtime` (letterbox -> session ->
decode, class mapping), `backends` (ONNX Runtime and OpenVINO sessions, fp32 / bf16 /
int8), `cpu_features` and `runtime_choice` (which backend and precision this CPU serves),
`serving` (the chosen runtime of a registry entry), `parity` (detections against FP32's;
the precision gate itself is `training.precision_gate`), `quantize` (INT8 copies), `threads`,
`ultralytics_runtime` (PyTorch, lazy), `postprocess` (YOLO-seg outputs -> boxes and masks
on the analysis grid), `assign` (damage -> part), `quality` (checks, pHash), `pipeline`
(the analyzer), `overlay` (annotated JPEGs).

A claim is one call: `analyzer.analyze(all_photos_of_the_claim)` (the models side by side
over all its photos, or one photo per core with `CDAT_CLAIM_PHOTOS_SIDE_BY_SIDE`);
`analyzer.runtimes` names what each model runs on.
"""
