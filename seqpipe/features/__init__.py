"""Built-in features, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_features(register):
    register("logmel", "seqpipe.features.logmel:LogMel", help="log-mel filterbank (torchaudio), per-utterance normalised")
