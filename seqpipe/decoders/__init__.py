"""Built-in decoders, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_decoders(register):
    register(
        "ctc_greedy",
        "seqpipe.decoders.ctc_greedy:CTCGreedy",
        help="CTC best path: argmax per frame, repeats merged, blanks dropped",
    )
    register(
        "ctc_beam",
        "seqpipe.decoders.ctc_beam:CTCBeam",
        help="CTC beam search (flashlight), optional lexicon + word n-gram LM",
    )
    register(
        "attention_beam",
        "seqpipe.decoders.attention_beam:AttentionBeam",
        help="beam search for encoder-decoder (seq2seq) speech models",
    )
    register(
        "sample",
        "seqpipe.decoders.sampling:Sampler",
        help="token sampling: temperature, top-k, nucleus (top-p)",
    )
    register(
        "beam", "seqpipe.decoders.sampling:BeamSearch", help="beam search over token sequences"
    )
    register(
        "note_peaks",
        "seqpipe.decoders.notes:NotePeaks",
        help="note tracker posteriors -> notes: onset peaks, voicing, pitch vote",
    )
    pass
