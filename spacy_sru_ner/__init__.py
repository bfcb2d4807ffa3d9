"""spaCy integration of SRU-NER, a slot-based recurrent decoder for nested NER."""
__version__ = "0.1.0"
