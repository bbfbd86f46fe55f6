"""Pretrained bundles shipped inside the package, registered by name (``-m digits``)."""

from pathlib import Path

from seqpipe.hookspecs import hookimpl

HERE = Path(__file__).parent

# name -> (file, one-line description); files are produced by the recipes in configs/.
BUNDLES = {
    "folk": (
        "folk.safetensors",
        "folk-tune melody LSTM with lookback inputs (configs/music/folk.yaml), default of seqpipe generate",
    ),
    "en-small": (
        "en-small.safetensors",
        "open-vocabulary English, 16 kHz CTC BiGRU + word 3-gram beam (configs/speech/en-small.yaml)",
    ),
    "digits": (
        "digits.safetensors",
        "connected English digits, two 8 kHz MFCC CTC BiGRUs averaged + digit-lexicon beam (configs/speech/digits.yaml)",
    ),
}


@hookimpl
def register_bundles(register):
    for name, (filename, help) in BUNDLES.items():
        register(name, str(HERE / filename), help=help)
