"""Appearance cue: embeddings of sampled UV textures, their distances, and per-track texture memory."""
from models.appearance.colour import ColourDescriptor, rgb_to_lab
from models.appearance.encoder import AppearanceEncoder
from models.appearance.memory import blend_textures
from models.appearance.parts import texel_part_labels

__all__ = ["AppearanceEncoder", "ColourDescriptor", "blend_textures", "rgb_to_lab", "texel_part_labels"]
