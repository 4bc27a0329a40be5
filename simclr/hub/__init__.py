"""Using a pretrained encoder elsewhere: load it, embed images, export it.

from simclr import load_encoder, embed
encoder = load_encoder("outputs/2026-11-23/10-00-00")  # run dir, .ckpt or .safetensors
X = embed(encoder, "photos/")
train = embed_labeled(encoder, "images/", split="train")  # .features, .labels, .classes
"""

from simclr.hub.embed import LabeledFeatures, embed, embed_labeled
from simclr.hub.export import export_encoder
from simclr.hub.loading import load_encoder, read_weights

__all__ = [
    "LabeledFeatures",
    "embed",
    "embed_labeled",
    "export_encoder",
    "load_encoder",
    "read_weights",
]
