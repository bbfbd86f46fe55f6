"""Built-in features, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_features(register):
    register(
        "melody_grid",
        "seqpipe.features.melody_grid:GridEncoding",
        help="melody tokens on a 16th-note grid: note-on / hold / rest (Magenta)",
    )
    register(
        "melody_events",
        "seqpipe.features.melody_events:EventEncoding",
        help="melody tokens: pitch, duration, time shift (keeps triplets)",
    )
    register(
        "logmel",
        "seqpipe.features.logmel:LogMel",
        help="log-mel filterbank (torchaudio), per-utterance normalised",
    )
    register(
        "mfcc",
        "seqpipe.features.mfcc:MFCC",
        help="MFCC + deltas (torchaudio), utterance/global normalisation",
    )
    register(
        "cqt",
        "seqpipe.features.tonal:CQT",
        help="constant-Q spectrogram, one bin per semitone (librosa)",
    )
    register("chroma", "seqpipe.features.tonal:Chroma", help="12-bin chroma from the CQT (librosa)")
    register(
        "pyin",
        "seqpipe.features.tonal:PYIN",
        help="pYIN pitch track: MIDI pitch + voiced probability (librosa)",
    )
