"""Rasterizers (built-in torch z-buffer, PyTorch3D) and UV texel maps for texture sampling."""
from models.texture.rasterizer import Fragments, Rasterizer
from models.texture.torch_rasterizer import TorchRasterizer
from models.texture.uv_map import UVTexelMap, uv_texel_map

__all__ = ["Fragments", "Rasterizer", "TorchRasterizer", "UVTexelMap", "uv_texel_map"]
