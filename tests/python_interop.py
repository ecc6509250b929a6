#!/usr/bin/env python3
"""Checks the weights format across Python and Rust, both ways.

    python3 tests/python_interop.py weights/digits.safetensors [--decode-bin PATH]
    python3 tests/python_interop.py weights/digits.decoder.safetensors   (a split model: both parts)

Needs `pip install -r tests/requirements.txt` (the PyPI safetensors package and numpy; no PyTorch).

1. Reads the file with the PyPI safetensors package and checks its header, tensor names, shapes and
   dtypes and its metadata JSON against docs/FORMAT.md. A split model's two parts are each checked,
   then taken together; I8 weights are multiplied by their per-row scales.
2. Runs the decoder and encoder in numpy (float64) and compares them with the Rust model
   (src/bin/decode.rs) on the same inputs.
3. Writes PyTorch-style files in numpy only (nn.Linear layout, the PyTorch examples VAE's layer
   names renamed as in docs/FORMAT.md; f32, f16 and f64), and checks that Rust accepts them and
   computes what numpy computes.
4. Checks that Rust refuses the usual export mistakes (a transposed weight, unrenamed layers).

Exits 1 on any mismatch. Without --decode-bin it builds the Rust side with
`cargo build --release --bin decode` first.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA_KEY = "vae_explorer"
FORMAT_VERSION = 1
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "U8": 1, "I8": 1}
PART_KEY = "vae_explorer_part"
SCALE_SUFFIX = "_scale"
FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}
# Largest difference allowed between the Rust (f32) and numpy (f64) results: |a - b| <= ATOL + RTOL * |b|.
ATOL, RTOL = 1e-5, 1e-4

failures = []


def check(ok, what):
    """Records a failed check; returns ok."""
    if not ok:
        failures.append(what)
        print(f"  FAIL {what}")
    return ok


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


# ---- the file, read from Python ----


def read_header(path):
    """The raw safetensors header, checked against the safetensors layout itself."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    check(8 + n <= len(data), f"header length {n} fits the file")
    header = json.loads(data[8 : 8 + n])
    st_meta = header.pop("__metadata__", None)
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        start, stop = info["data_offsets"]
        size = DTYPE_SIZES.get(info["dtype"], 0) * int(np.prod(info["shape"], dtype=np.int64))
        check(start == end and stop - start == size, f"{name}: offsets {start}..{stop} hold {size} bytes")
        end = stop
    check(8 + n + end == len(data), "tensor data covers the rest of the file exactly")
    return header, st_meta


def expected_tensors(meta):
    """Every model tensor as name -> PyTorch shape [out, in] / [out], in file order."""
    shapes = {}
    fan_in = meta["width"] * meta["height"]
    latent = meta["latent_dim"]

    def linear(name, n_in, n_out):
        shapes[f"{name}.weight"] = [n_out, n_in]
        shapes[f"{name}.bias"] = [n_out]

    for i, h in enumerate(meta["encoder_hidden"]):
        linear(f"encoder.hidden.{i}", fan_in, h)
        fan_in = h
    linear("encoder.mu", fan_in, latent)
    linear("encoder.logvar", fan_in, latent)
    fan_in = latent
    for i, h in enumerate(meta["decoder_hidden"]):
        linear(f"decoder.hidden.{i}", fan_in, h)
        fan_in = h
    linear("decoder.out", fan_in, meta["width"] * meta["height"])
    return shapes


def check_metadata(meta):
    """The metadata JSON against the spec (types, ranges, lengths)."""
    check(meta.get("format_version") == FORMAT_VERSION, f"format_version is {FORMAT_VERSION}")
    check(isinstance(meta.get("dataset"), str), "dataset is a string")
    names = meta.get("class_names")
    check(isinstance(names, list) and 1 <= len(names) <= 1000 and all(isinstance(c, str) for c in names),
          "class_names: 1..=1000 strings")
    for key in ("width", "height"):
        check(is_int(meta.get(key)) and 1 <= meta[key] <= 1024, f"{key} in 1..=1024")
    latent = meta.get("latent_dim")
    check(is_int(latent) and 1 <= latent <= 256, "latent_dim in 1..=256")
    for key in ("encoder_hidden", "decoder_hidden"):
        v = meta.get(key)
        check(isinstance(v, list) and len(v) <= 16 and all(is_int(h) and 1 <= h <= 16384 for h in v),
              f"{key}: at most 16 widths in 1..=16384")
    check(meta.get("activation") in ("relu", "tanh"), "activation is relu or tanh")
    check(meta.get("likelihood") == "bernoulli", "likelihood is bernoulli")
    for key in ("latent_mean", "latent_std"):
        v = meta.get(key)
        check(isinstance(v, list) and len(v) == latent and all(is_num(x) for x in v),
              f"{key}: latent_dim finite numbers")
    check(all(s > 0 for s in meta.get("latent_std", [])), "latent_std values are positive")
    check(meta.get("preprocess", "fit") in ("mnist", "fit", "none"), "preprocess is mnist, fit or none")
    metrics = meta.get("metrics")
    if metrics is not None:
        check(is_int(metrics.get("test_images")) and is_int(metrics.get("active_units")),
              "metrics.test_images and active_units are integers")
        check(all(is_num(metrics.get(k)) for k in ("neg_elbo", "recon", "kl")),
              "metrics.neg_elbo, recon, kl are numbers")
        check(metrics.get("iw_nll") is None or is_num(metrics["iw_nll"]), "metrics.iw_nll is a number or null")
        check(metrics.get("iw_samples") is None or is_int(metrics["iw_samples"]),
              "metrics.iw_samples is an integer or null")
    training = meta.get("training")
    if training is not None:
        check(isinstance(training.get("command"), str), "training.command is a string")
        check(is_int(training.get("seed")) and is_int(training.get("epochs")), "training.seed, epochs are integers")
        check(is_num(training.get("seconds")), "training.seconds is a number")
    known = {"format_version", "dataset", "class_names", "width", "height", "latent_dim", "encoder_hidden",
             "decoder_hidden", "activation", "likelihood", "latent_mean", "latent_std", "preprocess", "metrics",
             "training"}
    unknown = set(meta) - known
    if unknown:
        print(f"  note: metadata keys readers ignore: {sorted(unknown)}")


def check_file(path, part=None):
    """Checks a weights file (or one part of a split model) against the spec; returns (metadata, tensors)."""
    header, st_meta = read_header(path)
    check(isinstance(st_meta, dict) and METADATA_KEY in st_meta, f"__metadata__ has `{METADATA_KEY}`")
    meta = json.loads(st_meta[METADATA_KEY])
    check_metadata(meta)
    if part is not None:
        check(json.loads(st_meta.get(PART_KEY, "{}")).get("part") == part, f"{PART_KEY} says {part}")
    shapes = expected_tensors(meta)
    if part is not None:
        shapes = {n: s for n, s in shapes.items() if n.startswith("decoder.") == (part == "decoder")}
    scales = {k for k in header if k.endswith(SCALE_SUFFIX)}
    atlas = {k for k in header if k.startswith("atlas.")}
    check(part != "decoder" or not atlas, "the decoder part has no atlas")
    check(set(header) - atlas - scales == set(shapes), f"model tensors are exactly {sorted(shapes)}")
    for name, shape in shapes.items():
        info = header.get(name, {})
        check(info.get("shape") == shape, f"{name}: shape {info.get('shape')} == {shape}")
        if info.get("dtype") == "I8":
            scale = header.get(name + SCALE_SUFFIX, {})
            check(name.endswith(".weight") and (scale.get("dtype"), scale.get("shape")) == ("F32", shape[:1]),
                  f"{name}: an I8 weight with an F32 scale of shape {shape[:1]}")
        else:
            check(info.get("dtype") in FLOAT_DTYPES, f"{name}: dtype {info.get('dtype')} is a float")
    for scale in scales:
        check(header.get(scale[: -len(SCALE_SUFFIX)], {}).get("dtype") == "I8", f"{scale}: its weight is I8")
    if atlas:
        check(atlas == {"atlas.pixels", "atlas.labels", "atlas.mu"}, "atlas: all three tensors")
        n = header["atlas.labels"]["shape"][0]
        for name, dtype, shape in [("atlas.labels", "U8", [n]),
                                   ("atlas.pixels", "U8", [n, meta["height"], meta["width"]]),
                                   ("atlas.mu", "F32", [n, meta["latent_dim"]])]:
            got = (header[name]["dtype"], header[name]["shape"])
            check(got == (dtype, shape), f"{name}: {got} == {(dtype, shape)}")
    # The same file through the PyPI package.
    with safe_open(path, framework="numpy") as f:
        check(f.metadata() == st_meta, "safe_open sees the same __metadata__")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, t in tensors.items():
        check(list(t.shape) == header[name]["shape"], f"{name}: numpy shape matches the header")
        if t.dtype.kind == "f":
            check(bool(np.isfinite(t).all()), f"{name}: all values finite")
    if "atlas.labels" in tensors:
        check(int(tensors["atlas.labels"].max(initial=0)) < len(meta["class_names"]), "atlas labels < class count")
    for scale in scales:
        weight = scale[: -len(SCALE_SUFFIX)]
        check(bool((tensors[scale] >= 0).all()), f"{scale}: scales >= 0")
        tensors[weight] = tensors[weight].astype(np.float64) * tensors.pop(scale)[:, None].astype(np.float64)
    return meta, tensors


def check_split(decoder_path):
    """Checks both parts of a split model; returns (metadata, the tensors of both)."""
    encoder_path = decoder_path[: -len(".decoder.safetensors")] + ".encoder.safetensors"
    meta, tensors = check_file(decoder_path, "decoder")
    print(f"{encoder_path}: read from Python")
    encoder_meta, encoder_tensors = check_file(encoder_path, "encoder")
    check(encoder_meta == meta, "both parts have the same metadata")
    ids = [json.loads(read_header(p)[1][PART_KEY])["model_id"] for p in (decoder_path, encoder_path)]
    check(ids[0] == ids[1], f"both parts have the same model_id: {ids}")
    return meta, {**tensors, **encoder_tensors}


# ---- the model in numpy ----


def act(meta):
    return (lambda h: np.maximum(h, 0.0)) if meta["activation"] == "relu" else np.tanh


def linear(tensors, name, h):
    w = tensors[f"{name}.weight"].astype(np.float64)
    b = tensors[f"{name}.bias"].astype(np.float64)
    return h @ w.T + b


def np_decode(meta, tensors, z):
    h = np.asarray(z, dtype=np.float64)
    for i in range(len(meta["decoder_hidden"])):
        h = act(meta)(linear(tensors, f"decoder.hidden.{i}", h))
    return 1.0 / (1.0 + np.exp(-linear(tensors, "decoder.out", h)))


def np_encode(meta, tensors, x):
    h = np.asarray(x, dtype=np.float64)
    for i in range(len(meta["encoder_hidden"])):
        h = act(meta)(linear(tensors, f"encoder.hidden.{i}", h))
    return linear(tensors, "encoder.mu", h), linear(tensors, "encoder.logvar", h)


# ---- the model in Rust ----


def rust(decode_bin, path, z=(), x=()):
    """Runs the Rust model; returns (exit code, outputs as arrays or None, stderr)."""
    payload = json.dumps({"z": np.asarray(z, dtype=np.float64).tolist(),
                          "x": np.asarray(x, dtype=np.float64).tolist()})
    r = subprocess.run([decode_bin, path], input=payload, capture_output=True, text=True)
    if r.returncode != 0:
        return r.returncode, None, r.stderr.strip()
    out = json.loads(r.stdout)
    return 0, {k: np.array(v, dtype=np.float64) for k, v in out.items()}, r.stderr.strip()


def compare(what, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if not check(got.shape == want.shape, f"{what}: shape {got.shape} == {want.shape}"):
        return
    err = np.abs(got - want) - RTOL * np.abs(want)
    worst = float(np.max(err, initial=0.0))
    check(worst <= ATOL, f"{what}: Rust and numpy agree (worst excess {worst:.2e})")
    print(f"  {what}: {got.shape[0]} rows, max |Rust - numpy| = {float(np.max(np.abs(got - want), initial=0)):.2e}")


def compare_with_rust(decode_bin, path, meta, tensors, z, x):
    code, out, err = rust(decode_bin, path, z, x)
    if not check(code == 0, f"Rust loads {os.path.basename(path)} (exit {code}: {err})"):
        return
    compare("decode(z)", out["pixels"], np_decode(meta, tensors, z))
    mu, logvar = np_encode(meta, tensors, x)
    compare("encode(x).mu", out["mu"], mu)
    compare("encode(x).logvar", out["logvar"], logvar)


def probe_z(meta, tensors, rng):
    """The slider centre and corners, atlas encodings, and random draws around the centre."""
    mean = np.array(meta["latent_mean"], dtype=np.float64)
    std = np.array(meta["latent_std"], dtype=np.float64)
    rows = [mean, mean + 3 * std, mean - 3 * std]
    if "atlas.mu" in tensors:
        rows.extend(tensors["atlas.mu"][:3].astype(np.float64))
    rows.extend(mean + std * rng.standard_normal((4, len(mean))))
    return np.stack(rows)


# ---- a file made in Python, as a PyTorch user would ----


def pytorch_examples_vae(rng, n_in, hidden, latent):
    """A state dict shaped like the PyTorch examples VAE (fc1, fc21, fc22, fc3, fc4), nn.Linear init."""

    def linear(n_in, n_out):
        bound = 1.0 / math.sqrt(n_in)
        return (rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                rng.uniform(-bound, bound, (n_out,)).astype(np.float32))

    state = {}
    for name, (a, b) in {"fc1": (n_in, hidden), "fc21": (hidden, latent), "fc22": (hidden, latent),
                         "fc3": (latent, hidden), "fc4": (hidden, n_in)}.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = linear(a, b)
    return state


RENAME = {"fc1": "encoder.hidden.0", "fc21": "encoder.mu", "fc22": "encoder.logvar",
          "fc3": "decoder.hidden.0", "fc4": "decoder.out"}


def export(state, path, meta, dtype=np.float32, atlas=None):
    """Writes a state dict in this format: layer names renamed, nn.Linear [out, in] layout kept."""
    tensors = {}
    for key, value in state.items():
        layer, kind = key.rsplit(".", 1)
        tensors[f"{RENAME.get(layer, layer)}.{kind}"] = np.ascontiguousarray(value, dtype=dtype)
    if atlas is not None:
        tensors.update(atlas)
    save_file(tensors, path, metadata={METADATA_KEY: json.dumps(meta)})
    return tensors


def python_made_files(decode_bin, tmp):
    rng = np.random.default_rng(7)
    width, height, latent, hidden = 20, 12, 5, 48
    n_in = width * height
    state = pytorch_examples_vae(rng, n_in, hidden, latent)
    meta = {
        "format_version": FORMAT_VERSION, "dataset": "my-sprites", "class_names": ["cat", "dog", "owl"],
        "width": width, "height": height, "latent_dim": latent, "encoder_hidden": [hidden],
        "decoder_hidden": [hidden], "activation": "relu", "likelihood": "bernoulli",
        "latent_mean": [0.0] * latent, "latent_std": [1.0] * latent,
    }
    x = rng.uniform(0, 1, (4, n_in))
    for dtype in (np.float32, np.float16, np.float64):
        path = os.path.join(tmp, f"pytorch-style-{np.dtype(dtype).name}.safetensors")
        tensors = export(state, path, meta, dtype)
        print(f"{os.path.basename(path)}: written from Python")
        check_file(path)
        compare_with_rust(decode_bin, path, meta, tensors, probe_z(meta, tensors, rng), x)

    # With an atlas, tanh, and a decoder that does not mirror the encoder.
    meta2 = dict(meta, activation="tanh", decoder_hidden=[16, hidden])
    state2 = dict(state)
    del state2["fc3.weight"], state2["fc3.bias"]
    for i, (a, b) in enumerate([(latent, 16), (16, hidden)]):
        bound = 1.0 / math.sqrt(a)
        state2[f"decoder.hidden.{i}.weight"] = rng.uniform(-bound, bound, (b, a)).astype(np.float32)
        state2[f"decoder.hidden.{i}.bias"] = rng.uniform(-bound, bound, (b,)).astype(np.float32)
    pixels = (x * 255).round().astype(np.uint8)
    path = os.path.join(tmp, "pytorch-style-atlas.safetensors")
    mu, _ = np_encode(meta2, export(state2, path, meta2), pixels / 255.0)
    atlas = {"atlas.pixels": pixels.reshape(4, height, width), "atlas.labels": np.array([0, 2, 1, 2], np.uint8),
             "atlas.mu": mu.astype(np.float32)}
    tensors = export(state2, path, meta2, np.float32, atlas)
    print(f"{os.path.basename(path)}: written from Python")
    check_file(path)
    compare_with_rust(decode_bin, path, meta2, tensors, probe_z(meta2, tensors, rng), pixels / 255.0)

    # The usual mistakes are refused with a reason.
    def transpose(t, m):
        t["encoder.hidden.0.weight"] = np.ascontiguousarray(t["encoder.hidden.0.weight"].T)

    mistakes = [
        ("transposed weight", transpose, "encoder.hidden.0.weight"),
        ("layers not renamed", lambda t, m: t.update({"fc1.weight": t.pop("encoder.hidden.0.weight")}),
         "fc1.weight"),
        ("latent stats missing", lambda t, m: m.pop("latent_std"), "latent_std"),
    ]
    base = export(state, os.path.join(tmp, "base.safetensors"), meta)
    for what, change, needle in mistakes:
        tensors, bad_meta = dict(base), dict(meta)
        change(tensors, bad_meta)
        path = os.path.join(tmp, "mistake.safetensors")
        save_file(tensors, path, metadata={METADATA_KEY: json.dumps(bad_meta)})
        code, _, err = rust(decode_bin, path, [[0.0] * latent])
        check(code == 1 and needle in err, f"{what}: refused naming {needle!r} (exit {code}: {err})")
        print(f"  {what}: refused: {err}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a vae-explorer .safetensors file")
    parser.add_argument("--decode-bin", help="the Rust `decode` binary (default: build it with cargo)")
    args = parser.parse_args()
    decode_bin = args.decode_bin
    if decode_bin is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "decode"], cwd=ROOT, check=True)
        decode_bin = os.path.join(ROOT, "target", "release", "decode")

    print(f"{args.weights}: read from Python")
    split = args.weights.endswith(".decoder.safetensors")
    meta, tensors = check_split(args.weights) if split else check_file(args.weights)
    print(f"  {len(tensors)} tensors, latent_dim {meta['latent_dim']}, {meta['width']}x{meta['height']}, "
          f"encoder {meta['encoder_hidden']}, decoder {meta['decoder_hidden']}")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (3, meta["width"] * meta["height"]))
    if "atlas.pixels" in tensors:
        x = np.concatenate([x, tensors["atlas.pixels"][:3].reshape(3, -1) / 255.0])
    compare_with_rust(decode_bin, args.weights, meta, tensors, probe_z(meta, tensors, rng), x)

    with tempfile.TemporaryDirectory() as tmp:
        python_made_files(decode_bin, tmp)

    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("\nall Python interop checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # an unreadable file is a failed check, not a crash
        print(f"FAIL {type(e).__name__}: {e}")
        sys.exit(1)
