"""Built-in sequence models and recurrent cores, registered through the same hooks as
third-party ones. ``shape`` says which contract a model meets (docs/architecture.md)."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_cells(register):
    # recurrent cores: what ``cell:`` names in the composite models (models/core.py)
    register("lstm", "seqpipe.models.rnn:LSTMCore", help="stacked (bi)LSTM core, fused + packed")
    register("gru", "seqpipe.models.rnn:GRUCore", help="stacked (bi)GRU core, fused + packed")
    register("rnn", "seqpipe.models.rnn:RNNCore", help="stacked (bi) tanh/relu RNN core")


@hookimpl
def register_models(register):
    # recurrent model family (docs/models.md)
    many = "many-to-many"
    register("rnn", "seqpipe.models.rnn:RNN", help="stacked vanilla RNN (tanh|relu), many-to-many", shape=many)  # fmt: skip
    register("lstm", "seqpipe.models.rnn:LSTM", help="stacked (bi)LSTM, many-to-many", shape=many)
    register("gru", "seqpipe.models.rnn:GRU", help="stacked (bi)GRU, many-to-many", shape=many)
    register(
        "classifier",
        "seqpipe.models.classifier:RecurrentClassifier",
        help="any recurrent core (cell:) + mean/last/attention pooling, many-to-one",
        shape="many-to-one",
    )
    register(
        "rnn_lm",
        "seqpipe.models.rnn_lm:RecurrentLM",
        help="next-token LM on any recurrent core (cell:), O(1) step(), optional attention window",
        shape="autoregressive",
    )
    register(
        "seq2seq",
        "seqpipe.models.seq2seq:Seq2Seq",
        help="encoder (any recurrent core) - decoder with additive/dot/location attention",
        shape="seq2seq",
    )
    # speech acoustic models (docs/speech.md)
    register(
        "ctc_rnn",
        "seqpipe.models.acoustic:CTCRNN",
        help="conv front end + bidirectional recurrent core (cell:) + CTC head (DeepSpeech2-style)",
        shape=many,
    )
    register(
        "ctc_ensemble",
        "seqpipe.models.ensemble:CTCEnsemble",
        help="several CTC models of one config, frame posteriors averaged",
        shape=many,
    )
    register(
        "las",
        "seqpipe.models.acoustic:LAS",
        help="listen-attend-spell: pyramidal BiLSTM + attention decoder + joint CTC head",
        shape=(many, "seq2seq"),
    )
    # melody transcription (docs/music.md)
    register(
        "note_tracker",
        "seqpipe.models.note_tracker:NoteTracker",
        help="CQT + harmonic stacking -> conv + bidirectional core (cell:) -> onset/voiced/pitch per frame",
        shape=many,
    )
