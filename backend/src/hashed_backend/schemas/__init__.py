"""Request and response models. Requests forbid unknown fields; responses document what is returned."""
