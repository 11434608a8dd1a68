"""The Cityscapes label definitions the segmentation datasets need (after cityscapesscripts' ``helpers/labels.py``).

``gtFine_labelIds.png`` holds the 34 label ids 0..33 (and -1 for the licence plate, never written in the PNGs);
19 of them are evaluated and carry train ids 0..18, every other id maps to the ignore label 255. ACDC and Dark
Zurich ship ``*_gt_labelTrainIds.png`` already in train ids.
"""

from __future__ import annotations

import numpy as np

from ..metrics import IGNORE_INDEX

#: the 19 evaluated classes, by train id
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
#: label id of each train id (road = 7, ..., bicycle = 33)
LABEL_IDS_OF_TRAIN_IDS: tuple[int, ...] = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def label_id_to_train_id() -> np.ndarray:
    """A 256-entry uint8 lookup table: label id -> train id (255 for ids that are not evaluated)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[list(LABEL_IDS_OF_TRAIN_IDS)] = np.arange(len(LABEL_IDS_OF_TRAIN_IDS), dtype=np.uint8)
    return table


LABEL_TO_TRAIN: np.ndarray = label_id_to_train_id()
