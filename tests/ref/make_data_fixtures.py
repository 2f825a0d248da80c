#!/usr/bin/python3
"""Generate the data-pipeline fixtures for tests/test_data.c and tests/test_image.c.

Usage: /usr/bin/python3 tests/ref/make_data_fixtures.py [OUTDIR]
(OUTDIR defaults to tests/fixtures next to this script.)

data_resize.safetensors: for each case NAME, NAME.input (N,C,H,W) and
NAME.output = F.interpolate(input, size=(OH, OW), mode='bilinear',
align_corners=False) (antialias off). Inputs are whole numbers / 255, as
ToTensor makes them. "crop" resizes input[..., top:top+h, left:left+w]
(made contiguous) back to 28x28, as RandomResizedCrop does; the metadata
"crop" holds "top,left,h,w".

data_luma.safetensors: rgb (N,3) whole numbers 0..255 and l (N,), what
Pillow's Image.convert('L') makes of them (needs python3-pil, which only
regenerating the fixtures does).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

RESIZE_CASES = [
    # name, (N, C, H, W), (OH, OW)
    ("up224", (1, 1, 28, 28), (224, 224)),  # AlexNet's input from Fashion-MNIST
    ("up32", (2, 1, 28, 28), (32, 32)),
    ("down5", (2, 1, 7, 7), (5, 5)),
    ("down28", (1, 1, 60, 45), (28, 28)),
    ("rect", (2, 1, 20, 13), (9, 31)),
    ("rect_t", (1, 1, 13, 20), (40, 7)),
    ("same", (1, 1, 28, 28), (28, 28)),
    ("rgb", (1, 3, 20, 13), (9, 31)),  # C > 1: PyTorch's other kernel
]
CROP = (3, 5, 17, 20)  # top, left, h, w


def pixels(shape, gen):
    return torch.randint(0, 256, shape, generator=gen).float() / 255


def resize_fixture(path):
    gen = torch.Generator().manual_seed(20240611)
    tensors = {}
    for name, shape, size in RESIZE_CASES:
        x = pixels(shape, gen)
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        tensors[name + ".input"] = x
        tensors[name + ".output"] = y
    x = pixels((1, 1, 28, 28), gen)
    top, left, h, w = CROP
    crop = x[..., top:top + h, left:left + w].contiguous()
    tensors["crop.input"] = x
    tensors["crop.output"] = F.interpolate(crop, size=(28, 28), mode="bilinear",
                                           align_corners=False)
    meta = {"torch": torch.__version__, "crop": ",".join(str(v) for v in CROP)}
    st.save_file(tensors, path, metadata=meta)
    st.check_roundtrip(path, tensors, meta)


def luma_fixture(path):
    from PIL import Image, __version__ as pil_version

    rng = np.random.default_rng(601)
    rgb = rng.integers(0, 256, size=(1000, 3), dtype=np.uint8)
    edges = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                      [128, 128, 128], [1, 1, 1], [254, 254, 254], [127, 128, 129]], np.uint8)
    rgb = np.concatenate([edges, rgb])
    img = Image.fromarray(rgb.reshape(1, -1, 3), "RGB")
    lum = np.asarray(img.convert("L")).reshape(-1)
    tensors = {"rgb": rgb.astype(np.float32), "l": lum.astype(np.float32)}
    meta = {"pillow": pil_version}
    st.save_file(tensors, path, metadata=meta)
    st.check_roundtrip(path, tensors, meta)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    resize_fixture(os.path.join(out, "data_resize.safetensors"))
    luma_fixture(os.path.join(out, "data_luma.safetensors"))


if __name__ == "__main__":
    main()
