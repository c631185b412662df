"""Appearance cues: embeddings of each person (MobileNetV2 features of the person's pixels, or colours of the UV
texture's body parts), their distances, and PHALP's texture blending for per-track texture memories."""
from models.appearance.colour import ColourDescriptor, rgb_to_lab
from models.appearance.embedding import CropEmbedder
from models.appearance.encoder import AppearanceEncoder
from models.appearance.memory import blend_textures
from models.appearance.parts import texel_part_labels

__all__ = ["AppearanceEncoder", "ColourDescriptor", "CropEmbedder", "blend_textures", "rgb_to_lab", "texel_part_labels"]
