"""The slot decoder's settings: one frozen object, filled from the config.

The defaults live in one place only, the ``sru_ner`` component's default
config (``spacy_sru_ner/pipe.py``), as spaCy keeps them for its own components;
the registered architecture and the PyTorch module take every setting
explicitly. :meth:`DecoderSettings.defaults` reads that default config, for
code (tests, benchmarks) that builds a decoder outside a pipeline.
"""
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict


@dataclass(frozen=True)
class DecoderSettings:
    """Hyperparameters of :class:`~spacy_sru_ner.decoder.SlotDecoder`, named as
    in the ``spacy_sru_ner.SlotDecoder.v1`` config block.

    hidden_width: decoder width d (token vectors are projected to it).
    queries_per_action: latent queries per action (q; K = q * n_actions).
    half_context: relative-position window H around the pointer.
    dropout_positions, dropout_queries, dropout_scores, dropout_mlp: dropout on
        the position embeddings, the latent queries, the attention scores and
        the output MLP's input.
    token_multiplier, train_token_multiplier: the factor on the memory in the
        attention keys, fixed or trainable.
    max_train_steps_factor, max_predict_steps_factor: step caps (x gold rows in
        training with foreign labels, x (words + 2) at inference).
    slot_state: add the current memory slot (what was written at the pointer so
        far) to the decoder state. Not in the paper, whose state is only
        [word; attention context]; it makes the decoder learn far faster on
        small data. False gives the paper's exact state.
    """

    hidden_width: int
    queries_per_action: int
    half_context: int
    dropout_positions: float
    dropout_queries: float
    dropout_scores: float
    dropout_mlp: float
    token_multiplier: float
    train_token_multiplier: bool
    max_train_steps_factor: float
    max_predict_steps_factor: float
    slot_state: bool

    def __post_init__(self) -> None:
        for name in ("hidden_width", "queries_per_action", "half_context"):
            if getattr(self, name) < 1:
                raise ValueError(f"Decoder setting {name} must be >= 1, got {getattr(self, name)}.")
        for name in ("dropout_positions", "dropout_queries", "dropout_scores", "dropout_mlp"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"Decoder setting {name} must lie in [0, 1), got {getattr(self, name)}.")
        for name in ("max_train_steps_factor", "max_predict_steps_factor"):
            if not getattr(self, name) >= 1.0:
                raise ValueError(f"Decoder setting {name} must be >= 1, got {getattr(self, name)}.")

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "DecoderSettings":
        """The settings of a ``spacy_sru_ner.SlotDecoder.v1`` block (other keys
        such as ``@architectures``, ``tok2vec`` and ``nO`` are ignored)."""
        return cls(**{name: config[name] for name in cls.names()})

    @classmethod
    def defaults(cls, **overrides: Any) -> "DecoderSettings":
        """The component's default settings, with ``overrides``."""
        from .pipe import default_model_config
        from thinc.api import Config

        model = Config().from_str(default_model_config, interpolate=False)["model"]
        return replace(cls.from_config(model), **overrides)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
