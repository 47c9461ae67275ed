"""Storage: tables (`models`), engines and transactions (`session`), migrations (`migrate`)."""
