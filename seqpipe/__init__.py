"""seqpipe: recurrent sequence pipelines for speech-to-text and melody generation.

Kept light on purpose: ``seqpipe --help`` must not pay for importing torch.
"""

from seqpipe.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
