"""The music service: melodies from a melody model (``seqpipe generate``, :func:`seqpipe.generate`).

==================  ==============================================================
``request``         :class:`Request`: what to generate; primer and meter parsing
``rules``           :class:`MelodyRules`: grammar, scale and length masks per step
``generator``       :func:`generate_melodies`, and :func:`generate_files` behind the CLI
``render``          MIDI -> audio (FluidSynth) and piano-roll plots
``metrics``         melody statistics (Yang & Lerch 2018), n-gram copying index
``markov``          the Markov-chain baseline models must beat
``report``          what ``seqpipe evaluate`` reports for a melody model
==================  ==============================================================

The ``melody`` task's evaluation calls :mod:`report` (lazily): it samples melodies and
compares them with the held-out ones.
"""
