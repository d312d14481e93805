"""rtdrums: real-time drum decomposition by NMF with fixed templates.

A streaming engine holds pretrained spectral templates W and solves, frame by frame, only for the
activations h >= 0; soft masks split the input into kick, snare, hi-hat and residual stems, and a
causal peak picker turns the activations into MIDI triggers.
"""

__version__ = "0.1.0"
