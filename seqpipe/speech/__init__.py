"""The speech service: audio files in, transcripts out (``seqpipe transcribe``, :func:`seqpipe.transcribe`).

==================  ==============================================================
``files``           inputs (files, folders, globs, stdin), output naming, the batch
                    run behind ``seqpipe transcribe``
``transcriber``     :class:`Transcriber`: a speech bundle + decoder over VAD chunks
``vad``             energy VAD: long audio -> chunks of at most ``max_seconds``
``alignment``       word times and confidences from CTC forced alignment
``formats``         :class:`Transcript` and its txt / json / srt / vtt renderings
``ngram_lm``        word n-gram LMs (ARPA) and lexicons for ``ctc_beam``
==================  ==============================================================

Nothing here is imported by the components (features, models, decoders, tasks).
"""
