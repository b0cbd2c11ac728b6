"""Fixtures for the EWS client tests: the XSD (compiled once) and recorded responses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

HERE = Path(__file__).parent
SCHEMA_DIR = Path(__file__).parents[2] / ".." / "shared" / "ews-schema"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


@pytest.fixture(scope="session")
def ews_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "messages.xsd")))


def soap_children(data: bytes) -> list[etree._Element]:
    """Every child of soap:Header and soap:Body (the XSD covers those, not the envelope)."""
    root = etree.fromstring(data)
    assert root.tag == f"{{{SOAP}}}Envelope"
    return [child for part in root for child in part]


@pytest.fixture(scope="session")
def assert_valid(ews_schema: etree.XMLSchema) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        children = soap_children(data)
        assert children, "empty envelope"
        for child in children:
            if not ews_schema.validate(child):
                raise AssertionError(f"{etree.QName(child).localname}: {ews_schema.error_log}")

    return check


def response(name: str) -> bytes:
    return (HERE / "responses" / f"{name}.xml").read_bytes()
