"""TensorFlow's "SAME" padding rule, shared by the networks ported from TensorFlow files (SSDLite, BlazePose)."""


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis of length `size`: the output has ⌈size/stride⌉
    positions, and an odd total pad puts the extra row or column after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
