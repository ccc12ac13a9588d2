"""Synthetic keypoint data: articulated people (COCO-17) and robot arms (a custom schema)."""

from posekit.data.synth.generator import (
    KINDS,
    SynthConfig,
    SynthFrame,
    SynthInstance,
    generate,
    render,
)

__all__ = ["KINDS", "SynthConfig", "SynthFrame", "SynthInstance", "generate", "render"]
