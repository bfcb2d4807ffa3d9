"""``python -m spacy_sru_ner``: the command line interface."""
if __name__ == "__main__":
    from .cli import app

    app()
