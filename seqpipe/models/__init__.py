"""Built-in sequence models, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_models(register):
    # recurrent model family (docs/models.md)
    register("rnn", "seqpipe.models.rnn:RNN", help="stacked vanilla RNN (tanh|relu), many-to-many")
    register("lstm", "seqpipe.models.rnn:LSTM", help="stacked (bi)LSTM, many-to-many")
    register("gru", "seqpipe.models.rnn:GRU", help="stacked (bi)GRU, many-to-many")
    register(
        "classifier",
        "seqpipe.models.classifier:RecurrentClassifier",
        help="recurrent encoder + mean/last/attention pooling, many-to-one",
    )
    register(
        "rnn_lm",
        "seqpipe.models.rnn_lm:RecurrentLM",
        help="next-token LM (lstm|gru|rnn), O(1) step(), optional attention window",
    )
    register(
        "seq2seq",
        "seqpipe.models.seq2seq:Seq2Seq",
        help="encoder-decoder with additive/dot/location attention",
    )
    # speech acoustic models (docs/speech.md)
    register(
        "ctc_rnn",
        "seqpipe.models.acoustic:CTCRNN",
        help="conv front end + bidirectional LSTM/GRU + CTC head (DeepSpeech2-style)",
    )
    register(
        "ctc_ensemble",
        "seqpipe.models.ensemble:CTCEnsemble",
        help="several CTC models of one config, frame posteriors averaged",
    )
    register(
        "las",
        "seqpipe.models.acoustic:LAS",
        help="listen-attend-spell: pyramidal BiLSTM + attention decoder + joint CTC head",
    )
