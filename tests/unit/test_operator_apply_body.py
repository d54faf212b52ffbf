"""The body of the operator's server-side applies: JSON that the API server's YAML decoder takes whatever the
spec's strings hold. The cluster test with generated cameras (tests/operator) sends such bodies for real."""

from __future__ import annotations

import json

import yaml
from drishti_operator.kube import apply_body


def test_text_beyond_ascii_is_sent_raw_and_what_yaml_refuses_stays_escaped() -> None:
    text = "/videos/\U0001f3a5 gate \u00e9t\u00e9 \u4e2d \x85\x7f\x9f\ufffe\uffff \"quoted\" \\ \t\n\x00"
    body = apply_body({"spec": {"source": text}})
    assert "\U0001f3a5".encode() in body and b"\\ud83c" not in body  # no surrogate pair
    assert all(f"\\u{c:04x}".encode() in body for c in (0x85, 0x7F, 0x9F, 0xFFFE, 0xFFFF))
    assert json.loads(body) == {"spec": {"source": text}}
    # Read as YAML, as the API server reads it: a raw U+0085 would be a line break, and the client's own
    # surrogate-pair escapes two lone surrogates.
    assert yaml.safe_load(body.decode()) == {"spec": {"source": text}}
