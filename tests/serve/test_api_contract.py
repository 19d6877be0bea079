"""Contract test: schemathesis generates requests from the app's OpenAPI schema and
checks that every answer conforms to it (status codes, content types, bodies) and that
nothing is a 5xx. Fakes-based pipeline; bounded to 25 examples per operation.

One check is left out: ``positive_data_acceptance``. A blank question, or a chat with no
user message, fits the schema but is answered 400 with the pipeline's message (a rule
JSON Schema cannot state without losing that message)."""

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from rag.config import Settings
from rag.pipeline import Pipeline
from serve.api import create_app
from tests.conftest import NHS_CORPUS
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.serve.test_api import REPLY

_HOME = Path(tempfile.mkdtemp(prefix="rag-contract-"))
PIPE = Pipeline(Settings(corpus=NHS_CORPUS, index=_HOME / "idx"), embedder=HashEmbedder(),
                generator=ScriptedGenerator(REPLY))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(PIPE))


@pytest.fixture(scope="module", autouse=True)
def _indexed():
    PIPE.index()
    yield
    shutil.rmtree(_HOME, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
