"""``note_tracker``: a frame-level melody note tracker (monophonic), CQT frames in.

    forward(x[B,T,F], lengths[B]) -> (y[B,T,2+P], lengths[B])

with, per frame, ``y[..., 0]`` the onset logit (a note starts here), ``y[..., 1]`` the
voiced logit (a note sounds) and ``y[..., 2:]`` the logits of the P pitches. The input
is a constant-Q spectrogram with ``bins_per_semitone`` bins to a semitone.

1. Harmonic stacking (basic-pitch, Bittner et al. 2022): the spectrogram shifted down by
   each harmonic's distance, so that at a note's own bin the convolution sees its
   overtones (and an octave below) on top of each other.
2. 2-D convolutions over (time, frequency), one at the input's resolution, then (after
   max-pooling each semitone's bins) two per semitone: a salience per semitone that
   moves with the pitch (the same filters at every pitch).
3. A bidirectional recurrent core (``cell``) over the flattened salience maps: when
   notes start and stop needs context on both sides.
4. Heads: onset and voicing from the recurrent features; pitch from the salience at the
   pitch's semitone plus a correction from the recurrent features.

The P pitch classes are the semitones ``pitch_offset .. pitch_offset + P - 1`` counted
from the spectrogram's first semitone (the task's ``min_pitch`` minus the features'
``fmin_midi``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqpipe.models.core import BuildCell, CellSpec, make_core
from seqpipe.models.rnn import check_lengths
from seqpipe.types import NonNegativeInt, PositiveInt, Probability


class HarmonicStack(nn.Module):
    """[B,T,F] -> [B,H,T,F]: channel h is the input shifted down by harmonic h's interval
    (bins past the top are zero), so bin f of channel h holds frequency f * harmonic h."""

    def __init__(self, bins_per_semitone: int, harmonics: tuple[float, ...]):
        super().__init__()
        per_octave = 12 * bins_per_semitone
        self.shifts = [int(round(per_octave * math.log2(h))) for h in harmonics]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F = x.shape[-1]
        channels = []
        for shift in self.shifts:
            if shift >= 0:
                y = nn.functional.pad(x[..., shift:], (0, min(shift, F)))
            else:
                y = nn.functional.pad(x[..., : F + shift], (min(-shift, F), 0))
            channels.append(y)
        return torch.stack(channels, dim=1)


class NoteTracker(nn.Module):
    def __init__(
        self,
        input_size: int,
        output_size: int,
        bins_per_semitone: PositiveInt = 3,
        pitch_offset: NonNegativeInt = 1,
        harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5),
        channels: PositiveInt = 16,
        cell: CellSpec = "gru",
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 2,
        dropout: Probability = 0.1,
        build_cell: BuildCell | None = None,
    ):
        super().__init__()
        self.bins = bins_per_semitone
        self.semitones = input_size // bins_per_semitone
        self.pitches = output_size - 2
        self.pitch_offset = pitch_offset
        if self.pitches < 1 or pitch_offset + self.pitches > self.semitones:
            raise ValueError(
                f"note_tracker: {self.pitches} pitches from semitone {pitch_offset} do not fit "
                f"the {self.semitones} semitones of a {input_size}-bin input"
            )
        self.stack = HarmonicStack(bins_per_semitone, tuple(harmonics))
        H, C = len(self.stack.shifts), channels

        def block(c_in: int, kernel: tuple[int, int]) -> nn.Sequential:
            padding = (kernel[0] // 2, kernel[1] // 2)
            return nn.Sequential(
                nn.Conv2d(c_in, C, kernel, padding=padding), nn.BatchNorm2d(C), nn.ReLU()
            )

        self.fine = block(H, (3, 3))  # at the input's resolution, then pooled to semitones
        self.coarse = nn.ModuleList([block(C, (3, 3)), block(C, (5, 1))])  # one bin a semitone
        self.salience = nn.Conv2d(C, 1, 1)
        self.proj = nn.Linear(C * self.semitones, hidden_size)
        self.rnn = make_core(
            cell,
            build_cell,
            who="note_tracker",
            input_size=hidden_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.events = nn.Linear(self.rnn.output_size, 2)  # onset, voiced
        self.pitch = nn.Linear(self.rnn.output_size, self.pitches)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = check_lengths(x, lengths, "note_tracker")
        B, T, _ = x.shape
        # frames past each length are zeroed after every layer, so a padded batch and a
        # lone recording see the same numbers
        mask = (torch.arange(T, device=x.device)[None] < lengths.to(x.device)[:, None])[
            :, None, :, None
        ]
        x = x[..., : self.semitones * self.bins] + 1.0  # the CQT's [-1, 0] dB scale -> [0, 1]
        h = self.fine(self.stack(x) * mask) * mask  # [B, C, T, F]
        h = nn.functional.max_pool2d(h, (1, self.bins))  # [B, C, T, S]: one per semitone
        for layer in self.coarse:
            h = layer(h) * mask
        salience = self.salience(h)[:, 0]  # [B, T, S]
        z = self.dropout(torch.relu(self.proj(h.permute(0, 2, 1, 3).reshape(B, T, -1))))
        z, _ = self.rnn(z, lengths)  # [B, T, 2H]
        z = self.dropout(z)
        pitch = salience[..., self.pitch_offset : self.pitch_offset + self.pitches] + self.pitch(z)
        return torch.cat([self.events(z), pitch], dim=-1), lengths
