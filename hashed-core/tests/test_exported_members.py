from __future__ import annotations

import hashed


def test_all_exports_exist_and_are_sorted():
    assert hashed.__all__ == sorted(hashed.__all__)
    for name in hashed.__all__:
        assert hasattr(hashed, name), name


def test_every_setting_has_its_environment_variable_listed():
    from hashed import environment_variables
    from hashed.config import HashedSettings

    listed = set(environment_variables.__all__)
    for field in HashedSettings.model_fields:
        assert f"HASHED_{field.upper()}" in listed, field
