"""Settings are data: typed, bounded, and described (tests/test_docs.py keeps each documented in docs/operations.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_every_setting_has_a_description():
    assert all(field.description for field in Settings.model_fields.values())


def test_environment_overrides_and_bad_values_fail_fast(monkeypatch):
    monkeypatch.setenv("POLICYQA_FUSION", "rrf")
    assert Settings().fusion == "rrf"
    monkeypatch.setenv("POLICYQA_DENSE_WEIGHT", "1.5")
    with pytest.raises(ValidationError):
        Settings()
