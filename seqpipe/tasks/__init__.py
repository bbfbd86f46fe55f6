"""Built-in tasks, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_tasks(register):
    register(
        "melody",
        "seqpipe.tasks.melody:MelodyTask",
        help="next-token melody LM: NLL per note, Markov baseline, generation",
    )
    register(
        "classify",
        "seqpipe.tasks.classify:Classify",
        help="many-to-one audio classification from JSONL manifests: cross-entropy, accuracy",
    )
    register(
        "speech",
        "seqpipe.tasks.speech:SpeechTask",
        help="speech-to-text from JSONL manifests: CTC (+attention) loss, WER/CER",
    )
    register(
        "notes",
        "seqpipe.tasks.notes:NotesTask",
        help="melody transcription: onset/voiced/pitch per frame, mir_eval note F1",
    )
    pass
