"""Encoder backbones and projection heads."""

from simclr.models.encoder import build_encoder, feature_dim
from simclr.models.head import ProjectionHead, build_head

__all__ = ["ProjectionHead", "build_encoder", "build_head", "feature_dim"]
