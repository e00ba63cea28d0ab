"""A user's dataset as a folder of images: DIR/train/<class>/*.png and DIR/test/<class>/*.png
(any format OpenCV reads), grey or colour, one size. Classes are the sub-folder names in
sorted order; train and test must have the same ones."""
import os

import numpy as np

from datasets import images
from utils.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


def is_image_folder(path):
    return os.path.isdir(os.path.join(path, "train")) and os.path.isdir(os.path.join(path, "test"))


def read_image(path, flag):
    import cv2
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"{flag}: {path} is not a readable image")
    if image.dtype != np.uint8:
        raise UserError(f"{flag}: {path} has {image.dtype} pixels; expected 8-bit images")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]          # alpha carries no class information
    if image.ndim == 3:
        image = image[:, :, ::-1]        # OpenCV's BGR -> RGB
    return image


def read_split(root, split, flag, classes=None):
    folder = os.path.join(root, split)
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if not found:
        raise UserError(f"{flag}: {folder} has no class sub-folders (expected {folder}/<class>/*.png)")
    if classes is not None and found != classes:
        raise UserError(f"{flag}: {folder} has classes {found}, but train has {classes}; both need the same ones")
    x, y, shape, first = [], [], None, None
    for label, name in enumerate(found):
        files = sorted(f for f in os.listdir(os.path.join(folder, name)) if f.lower().endswith(EXTENSIONS))
        if not files and split == "train":
            raise UserError(f"{flag}: {os.path.join(folder, name)} holds no images")
        for f in files:
            path = os.path.join(folder, name, f)
            image = read_image(path, flag)
            if shape is None:
                shape, first = image.shape, path
            elif image.shape != shape:
                raise UserError(f"{flag}: {path} is {image.shape}, but {first} is {shape}; all images need one size "
                                "and channel count")
            x.append(image)
            y.append(label)
    if not x:
        raise UserError(f"{flag}: {folder} holds no images")
    return np.stack(x), np.array(y, np.int64), found


def load(root, flag="--dataset"):
    train_x, train_y, classes = read_split(root, "train", flag)
    test_x, test_y, _ = read_split(root, "test", flag, classes)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise UserError(f"{flag}: {root}/train images are {train_x.shape[1:]} but test images are {test_x.shape[1:]}")
    return images.from_arrays(root, train_x, train_y, test_x, test_y, f"{flag}: {root}")
