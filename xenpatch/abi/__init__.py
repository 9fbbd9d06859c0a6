"""The ABI engine: preprocess, parse, lay out, evaluate, check and diff Xen's public headers."""
