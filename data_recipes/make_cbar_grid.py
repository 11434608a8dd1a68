"""Draw one image under the ten ImageNet-C-Bar corruptions at severities 1, 3 and 5 (``docs/imagenet_c_bar_grid.png``).

The image goes through the published geometry (resize 256, centre crop 224), is corrupted with the per-sample
seed the suite uses, and each tile is shown downscaled. Run from the repository root::

    python data_recipes/make_cbar_grid.py                      # the default demo image
    python data_recipes/make_cbar_grid.py --image my.JPEG --out /tmp/grid.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from robustbench_sympie.corruptions import get_corruption, sample_seed
from robustbench_sympie.corruptions.imagenet_c_bar import CBAR_CORRUPTIONS, PARAMETERS
from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.imageio import Preprocess, load_rgb

DEFAULT_IMAGE = "n01530575_brambling.JPEG"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "imagenet_c_bar_grid.png"
SEVERITIES: tuple[int, ...] = (1, 3, 5)
LABEL_WIDTH, HEADER, PAD = 190, 22, 4
INK, PAPER = (20, 20, 20), (255, 255, 255)


def corrupted_tiles(pixels: np.ndarray, image_id: str, seed: int) -> dict[tuple[str, int], np.ndarray]:
    """Every (corruption, severity) of the grid applied to ``pixels``, seeded as the suite seeds them."""
    return {(name, s): get_corruption(name)(pixels, s, sample_seed(image_id, name, s, seed))
            for name in CBAR_CORRUPTIONS for s in SEVERITIES}


def draw_grid(clean: np.ndarray, tiles: dict[tuple[str, int], np.ndarray], tile: int) -> Image.Image:
    """Rows: the corruptions; columns: clean, then severities 1, 3, 5 (with the published parameter)."""
    step = tile + PAD
    canvas = Image.new("RGB", (LABEL_WIDTH + step * (1 + len(SEVERITIES)), HEADER + step * len(CBAR_CORRUPTIONS)),
                       PAPER)
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(["clean", *(f"severity {s}" for s in SEVERITIES)]):
        draw.text((LABEL_WIDTH + col * step + 4, 5), title, fill=INK)
    for row, name in enumerate(CBAR_CORRUPTIONS):
        top = HEADER + row * step
        params = ", ".join(f"{PARAMETERS[name][s - 1]:g}" for s in SEVERITIES)
        draw.text((6, top + tile // 2 - 12), name, fill=INK)
        draw.text((6, top + tile // 2 + 2), f"parameter {params}", fill=INK)
        for col, pixels in enumerate([clean, *(tiles[(name, s)] for s in SEVERITIES)]):
            shown = Image.fromarray(pixels).resize((tile, tile), Image.Resampling.LANCZOS)
            canvas.paste(shown, (LABEL_WIDTH + col * step, top))
    return canvas


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=demo_data_root() / DEFAULT_IMAGE, help="clean image")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--tile", type=int, default=144, help="displayed tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="run seed mixed into each corruption's seed")
    args = parser.parse_args(argv)
    clean = Preprocess()(load_rgb(args.image))
    grid = draw_grid(clean, corrupted_tiles(clean, args.image.name, args.seed), args.tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(f"wrote {args.out} ({grid.width} x {grid.height})")
    return args.out


if __name__ == "__main__":
    main()
