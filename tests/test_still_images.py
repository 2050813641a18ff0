"""Pseudo-video from still images: the reader, the clip generator and the mmengine dataset, on the real
../shared/data/still-images (skipped without it, like every real-data test; see conftest.py)."""
from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset, pseudo_collate, worker_init_fn
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader

from reusegate.data.stills import PseudoVideoGenerator, StillImageReader, close_small_holes, mask_ious
from reusegate.integrations.mmengine import DavisClipDataset, EpochSeedHook, StillImageClipDataset
from reusegate.registry import DATASETS

REPO = Path(__file__).resolve().parents[1]
SMALL = (64, 96)


def _copy_set(root: Path, dst: Path, names: list[str], set_name: str = "pennfudan") -> Path:
    for kind, ext in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        (dst / set_name / kind).mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copy(root / set_name / kind / (n + ext), dst / set_name / kind / (n + ext))
    return dst


# ------------------------------------------------------------------------------------------------ reader
def test_reader_lists_every_set(still_images_root):
    reader = StillImageReader(still_images_root)
    counts = {s: sum(1 for it in reader.items if it.set == s) for s in reader.sets}
    assert counts == {"ccp": 1003, "ecssd": 1000, "pennfudan": 170}
    i = next(j for j, it in enumerate(reader.items) if it.name == "FudanPed00001")
    image, labels = reader.load(i)
    assert image.shape[:2] == labels.shape == reader.size(i)
    assert sorted(np.unique(labels)) == [0, 1, 2]  # instance ids as stored


def test_reader_errors_name_the_file(still_images_root, tmp_path):
    names = ["FudanPed00001", "FudanPed00002"]
    root = _copy_set(still_images_root, tmp_path / "a", names)
    (root / "pennfudan" / "Annotations" / "FudanPed00002.png").unlink()
    with pytest.raises(FileNotFoundError, match="FudanPed00002.png does not exist"):
        StillImageReader(root)
    root = _copy_set(still_images_root, tmp_path / "b", names)
    (root / "pennfudan" / "JPEGImages" / "FudanPed00002.jpg").write_bytes(b"not a jpeg")
    reader = StillImageReader(root)
    reader.load(0)
    with pytest.raises(ValueError, match="FudanPed00002.jpg.*damaged"):
        reader.load(1)
    root = _copy_set(still_images_root, tmp_path / "c", names)
    shutil.copy(root / "pennfudan" / "Annotations" / "FudanPed00001.png",
                root / "pennfudan" / "Annotations" / "FudanPed00002.png")  # another image's size
    with pytest.raises(ValueError, match=r"mask .*FudanPed00002.png is \d+x\d+ but image"):
        StillImageReader(root).load(1)
    with pytest.raises(FileNotFoundError, match="still-image root"):
        StillImageReader(tmp_path / "nowhere")


def test_closing_fills_holes_and_keeps_the_object(still_images_root):
    labels = np.zeros((40, 40), np.uint8)
    labels[5:35, 5:35] = 1
    labels[18:21, 18:21] = 0  # a hole
    labels[30:40, 0:3] = 2
    closed = close_small_holes(labels, 5)
    assert (closed[18:21, 18:21] == 1).all()
    assert (closed[labels > 0] == labels[labels > 0]).all()  # only background changes
    reader = StillImageReader(still_images_root, sets=["ccp"], close_holes={"ccp": 5})
    raw = StillImageReader(still_images_root, sets=["ccp"]).load(0)[1]
    assert np.count_nonzero(reader.load(0)[1]) > np.count_nonzero(raw)


# ------------------------------------------------------------------------------------------------ generator
def _coordinate_image(h: int = 200, w: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """Pixels that encode their own (x, y) in R and G (B = 0), and two touching objects (ids 1, 2)."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)
    labels = np.zeros((h, w), np.uint8)
    labels[60:150, 70:120] = 1
    labels[60:150, 120:170] = 2
    return image, labels


def _decoded_ids(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every pixel, the set of source ids within one pixel of the source position its colour encodes."""
    x, y = frame[..., 0].astype(int), frame[..., 1].astype(int)
    h, w = labels.shape
    near = [labels[np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.stack(near, -1)


@pytest.mark.parametrize("distractor", [False, True])
def test_masks_follow_the_warped_pixels(distractor):
    image, labels = _coordinate_image()
    background = np.full((90, 120, 3), 255, np.uint8)  # B = 255: tells pasted background from objects (B = 0)
    gen = PseudoVideoGenerator(num_frames=6, size=(120, 160), colour_drift=0.0, max_shift=0.05, max_rotation=8,
                               max_deform=0.02)
    touching = False
    for seed in range(4):
        clip = gen.make_clip(image, labels, np.random.default_rng(seed), background=background, num_objects=2,
                             distractor=distractor)
        assert clip["object_ids"] == [1, 2]
        assert sorted(clip["layers"]) == ([0, 1, 2] if distractor else [1, 2])
        copy = [s for c, s in zip(clip["layers"], clip["source_ids"]) if c == 0]
        for frame, mask in zip(clip["imgs"], clip["masks"]):
            obj = frame[..., 2] < 128
            assert set(np.unique(mask)) <= {0, 1, 2}
            assert (obj[mask > 0]).all()  # every labelled pixel shows an object's pixels ...
            if not distractor:
                assert np.array_equal(obj, mask > 0)  # ... and every object pixel is labelled
            near = _decoded_ids(frame, labels)
            for j in (1, 2):  # ... of that very object, whichever is in front
                hit = (near[mask == j] == j).any(-1)
                assert hit.mean() > 0.995, (seed, j, hit.mean())
            if distractor:
                extra = obj & (mask == 0)  # the copy: object pixels labelled background
                assert not extra.any() or (near[extra] == copy[0]).any(-1).mean() > 0.995
            touching |= bool(((mask[:, 1:] == 1) & (mask[:, :-1] == 2) | (mask[:, 1:] == 2) & (mask[:, :-1] == 1)).any())
        if distractor:
            assert np.count_nonzero((clip["imgs"][0][..., 2] < 128) & (clip["masks"][0] == 0)) > 50
        assert np.allclose(clip["iou_to_first"], mask_ious(clip["masks"], 2))
        assert (clip["iou_to_first"][0] == 1).all() and clip["iou_to_first"][1:].min() < 1  # they move
    assert touching  # the objects meet, so the occlusion order is exercised


def test_frame_zero_is_the_still_image_at_rest():
    image, labels = _coordinate_image()
    gen = PseudoVideoGenerator(num_frames=4, size=(200, 240), zoom=(10.0, 10.0), colour_drift=0.0)
    clip = gen.make_clip(image, labels, np.random.default_rng(0), num_objects=2)
    m0 = clip["masks"][0]
    # 0.95 x the fit scale: the 100x90 objects take ~95 % of the canvas height, unrotated and undeformed.
    ys = np.nonzero(m0)[0]
    assert abs((ys.max() - ys.min() + 1) - 0.95 * 200) <= 2
    assert np.count_nonzero(m0 == 1) == pytest.approx(np.count_nonzero(m0 == 2), rel=0.05)


def test_pennfudan_instances_keep_their_ids(still_images_root):
    reader = StillImageReader(still_images_root, sets=["pennfudan"])
    i = next(j for j, it in enumerate(reader.items) if it.name == "FudanPed00001")
    image, labels = reader.load(i)
    gen = PseudoVideoGenerator(num_frames=3, size=SMALL)
    clip = gen.make_clip(image, labels, np.random.default_rng(1), num_objects=8)
    assert clip["object_ids"] == [1, 2]
    assert set(np.unique(clip["masks"][0])) == {0, 1, 2}
    one = gen.make_clip(image, labels, np.random.default_rng(1), num_objects=1)
    assert len(one["object_ids"]) == 1 and set(np.unique(one["masks"][0])) == {0, 1}  # relabelled 1
    with pytest.raises(ValueError, match="no object"):
        gen.make_clip(image, np.zeros_like(labels), np.random.default_rng(0))


def test_generator_is_deterministic_per_seed():
    image, labels = _coordinate_image()
    gen = PseudoVideoGenerator(num_frames=3, size=SMALL)
    a, b, c = (gen.make_clip(image, labels, np.random.default_rng(s), num_objects=2, distractor=True) for s in (5, 5, 6))
    assert all(np.array_equal(x, y) for x, y in zip(a["imgs"] + a["masks"], b["imgs"] + b["masks"]))
    assert not all(np.array_equal(x, y) for x, y in zip(a["imgs"], c["imgs"]))


# ------------------------------------------------------------------------------------------------ dataset
def _stills(root: Path, **kw) -> StillImageClipDataset:
    kw = dict(dict(clip_length=3, size=SMALL, samples_per_epoch=6, seed=1), **kw)
    return StillImageClipDataset(root, **kw)


def _same(a: dict, b: dict) -> bool:
    return torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["data_samples"].gt_labels, b["data_samples"].gt_labels)


def test_dataset_draws_fresh_reproducible_clips(still_images_root):
    ds = _stills(still_images_root)
    assert len(ds) == 6
    hook, runner = EpochSeedHook(), SimpleNamespace(seed=7, epoch=0)
    hook.before_train_epoch(runner)
    e0 = ds[2]
    hook.before_train_epoch(runner)
    assert _same(ds[2], e0)  # the same epoch again (a resumed run): the same clip
    runner.epoch = 1
    hook.before_train_epoch(runner)
    e1 = ds[2]
    assert not _same(e1, e0)  # the next epoch: a fresh draw
    assert not _same(_stills(still_images_root, seed=2)[2], e1)  # the dataset's seed keeps two datasets apart
    images = {ds.make_clip(i)["image"] for i in range(6) for _ in range(3)}
    assert len(images) > 12  # every clip draws its image: an epoch shorter than the sets still reaches them all


def test_dataloader_workers_draw_fresh_clips_each_epoch(still_images_root):
    """mmengine seeds a worker's numpy identically every epoch; the worker's torch seed (drawn from the main
    process's torch generator, which EpochSeedHook re-seeds per epoch) still makes each epoch's clips new."""
    ds = _stills(still_images_root, samples_per_epoch=2)
    init = partial(worker_init_fn, num_workers=1, rank=0, seed=0)

    def epoch(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        loader = DataLoader(ds, batch_size=2, num_workers=1, worker_init_fn=init, collate_fn=pseudo_collate)
        return torch.stack(next(iter(loader))["inputs"])

    a = epoch(0)
    assert torch.equal(epoch(0), a) and not torch.equal(epoch(1), a)


def test_set_weights_choose_the_sets(still_images_root):
    ds = _stills(still_images_root, set_weights={"pennfudan": 1.0})
    np.random.seed(0)
    assert {ds.make_clip(i)["sequence"].split("/")[0] for i in range(6)} == {"pennfudan"}
    with pytest.raises(ValueError, match="set_weights"):
        _stills(still_images_root, set_weights={"davis": 1.0})


def test_dataset_sample_matches_davis_and_batches(still_images_root, davis_root):
    davis = DavisClipDataset(davis_root, sequences=["bear"], clip_length=3, size=SMALL, samples_per_object=2)
    stills = _stills(still_images_root, sets=["pennfudan"], num_objects=(2, 3), paste_prob=1.0, distractor_prob=1.0)
    np.random.seed(0)
    d, s = davis[0], stills[0]
    assert d.keys() == s.keys()
    assert s["inputs"].dtype == d["inputs"].dtype == torch.uint8 and s["inputs"].shape == d["inputs"].shape
    ds_, ss = d["data_samples"], s["data_samples"]
    assert set(ds_.metainfo) <= set(ss.metainfo)
    assert ss.gt_masks.shape == ds_.gt_masks.shape and ss.gt_masks.dtype == ds_.gt_masks.dtype
    labels, target = ss.gt_labels, ss.object_id
    assert torch.equal(ss.gt_masks[:, 0], (labels == target).float())
    assert ss.gt_iou.shape == (3, int(labels.max())) and torch.all(ss.gt_iou[0] == 1)
    assert ss.sequence.startswith("pennfudan/")
    both = ConcatDataset([davis, stills])
    batch = pseudo_collate([both[i] for i in (0, len(davis), 1, len(davis) + 1)])
    clips = torch.stack(list(batch["inputs"]))
    masks = torch.stack([x.gt_masks for x in batch["data_samples"]])
    assert clips.shape == (4, 3, 3, *SMALL) and masks.shape == (4, 3, 1, *SMALL)
    assert all(m[0].sum() > 0 for m in masks)  # the tracked object is on the reference frame


def test_pseudo_video_config_builds_its_dataset(still_images_root, davis_root, monkeypatch):
    monkeypatch.setenv("REUSEGATE_DATA", os.fspath(still_images_root.parent))
    cfg = Config.fromfile(REPO / "configs" / "experiments" / "pseudo_video_pretrain.py")
    assert cfg.model.gate is None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        ds = DATASETS.build(cfg.train_dataloader.dataset)
    davis, stills = ds.datasets
    assert isinstance(davis, DavisClipDataset) and isinstance(stills, StillImageClipDataset)
    np.random.seed(0)
    a, b = ds[0], ds[len(davis)]
    assert a["inputs"].shape == b["inputs"].shape == (6, 3, *cfg.clip_size)
