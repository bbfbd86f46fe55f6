"""seqpipe: recurrent sequence pipelines for speech-to-text and melody generation.

The Python API is :func:`transcribe`, :func:`stream`, :func:`generate` and :func:`load`
(seqpipe/api.py).
Kept light on purpose: importing seqpipe (and ``seqpipe --help``) does not import torch;
the API functions do, when first called.
"""

from seqpipe.api import generate, load, stream, transcribe
from seqpipe.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["generate", "hookimpl", "load", "stream", "transcribe", "__version__"]
